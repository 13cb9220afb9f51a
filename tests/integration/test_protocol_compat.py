"""Peers of different releases on one cluster: optional protocol features are only used where
both sides announced them, and pickled code runs only where its Python matches."""
from __future__ import annotations

import asyncio
import platform

import pytest

from dist_protocol.comm import connect
from dist_protocol.environment import pickle_tag
from dist_protocol.messages import KeyInMemory, Submit, TaskErred, TaskSpec
from dist_protocol.serialize import dumps_function

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def test_a_new_client_scatters_to_a_center_that_announces_no_features(processes):
    # DIST_PROTOCOL_FEATURES="" makes the center announce what a release before features did:
    # nothing. It rejects a scatter-done, as such a release would (there: unknown-op), so a
    # client that sent one anyway would lose its connection and everything after would fail.
    center = processes.start_center(env={"DIST_PROTOCOL_FEATURES": ""})
    processes.start_worker(center.address)
    processes.start_worker(center.address)
    e = processes.executor(center.address)
    e.wait_for_workers(2, timeout=RESULT_TIMEOUT)
    futures = e.scatter(list(range(10)))
    assert all(f.status == "finished" for f in futures)
    # where the data went reached the center before scatter returned (here: via who-has)
    assert set(e.who_has(futures)) == {f.key for f in futures}
    assert all(e.who_has(futures).values())
    assert e.submit(sum, futures).result(timeout=RESULT_TIMEOUT) == 45
    assert e.gather(futures, timeout=RESULT_TIMEOUT) == list(range(10))
    assert "closing connection" not in center.output()


def test_the_same_client_uses_scatter_done_where_the_center_announces_it(processes):
    center = processes.start_center()
    processes.start_worker(center.address)
    e = processes.executor(center.address)
    futures = e.scatter([1, 2, 3])
    assert e.submit(sum, futures).result(timeout=RESULT_TIMEOUT) == 6
    assert all(e.who_has(futures).values())


def answer():
    return 42


async def submit_raw(center: str, task: TaskSpec) -> TaskErred | KeyInMemory:
    comm = await connect(center, role="client")
    comm.send(Submit(tasks=[task]))
    try:
        while True:
            msg = await asyncio.wait_for(comm.recv(), RESULT_TIMEOUT)
            if isinstance(msg, (TaskErred, KeyInMemory)):
                return msg
    finally:
        comm.close()


def test_a_worker_never_unpickles_a_task_tagged_with_another_python(processes):
    # What a client on another Python (or one whose view of the workers was out of date)
    # sends: the worker must answer with an error, not unpickle it and crash or lie.
    center = processes.start_center()
    worker = processes.start_worker(center.address)
    task = TaskSpec(key="answer-1", function=dumps_function(answer), pickled_with="cpython-3.99")
    reply = asyncio.run(submit_raw(center.address, task))
    assert isinstance(reply, TaskErred) and reply.exception_type == "EnvironmentMismatch"
    assert "CPython 3.99" in reply.message and f"CPython {platform.python_version()}" in \
        reply.message
    same = TaskSpec(key="answer-2", function=dumps_function(answer), pickled_with=pickle_tag())
    assert isinstance(asyncio.run(submit_raw(center.address, same)), KeyInMemory)
    assert len(worker.matching("Start worker at ")) == 1  # never restarted
