"""A task's large inputs on disk are read back on a thread while the task waits ``reading``,
holding its slot: the state orders the reads (``ReadSpilled``) and runs the task once the last
has ended (``SpilledValueRead``), as it runs a task once its fetches have. Here the test reads
each file where the worker's thread would (``DataStore.read_value``)."""
from __future__ import annotations

import numpy as np
import pytest
from dist_protocol.messages import ComputeTask, MissingData, TaskErred
from dist_worker.events import (ComputeRequested, DataPut, Execute, Fetch, FreeRequested,
                                ReadSpilled, RestartRequested, SendToCenter, SpilledValueRead)
from dist_worker.state import WorkerState
from dist_worker.store import READ_OFF_LOOP_FROM, DataStore

pytestmark = pytest.mark.timeout(60)

ME, PEER = "tcp://me:1", "tcp://peer:2"
LARGE = READ_OFF_LOOP_FROM + 2**20  # bytes of a value read back on a thread


class InlineWriter:
    """Writes each value handed to it at once and records its end at once, as the writer's
    thread and then the loop would, one after the other."""

    def submit(self, write, done) -> None:
        write()
        done(None)

    def close(self) -> None:
        pass


def value(i: int, nbytes: int = LARGE) -> np.ndarray:
    return np.full(nbytes // 8, float(i))


def task(key: str, *deps: str, priority: int = 0) -> ComputeRequested:
    return ComputeRequested(ComputeTask(key=key, function="operator:getitem",
                                        who_has={dep: [ME, PEER] for dep in deps},
                                        nbytes=dict.fromkeys(deps, LARGE), priority=priority))


class Worker:
    """A state over a real store whose target holds two large values: ``a`` is on disk,
    ``b`` and ``c`` in memory."""

    def __init__(self, tmp_path, nthreads: int = 1):
        self.store = DataStore(target=2.5 * LARGE, directory=str(tmp_path),
                               spill_compression="none", writer=InlineWriter())
        self.state = WorkerState(nthreads, ME, data=self.store)
        held = {"a": value(1), "b": value(2), "c": value(3)}
        self(DataPut(held, dict.fromkeys(held, LARGE)))
        assert self.store.on_disk("a") and self.store.in_memory("b")

    def __call__(self, *events) -> list:
        out = self.state.handle(*events)
        self.state.validate()
        self.store.hand_off_dropped()
        return out

    def read(self, key: str) -> list:
        """The worker's read of ``key``: room made (the values leaving written on the
        writer's thread), the file read on a thread, then its end told to the state."""
        made = []
        self.store.make_room_for(key, lambda: made.append(key))
        assert made == [key]  # (the writes ended at once)
        read, size = self.store.read_value(key)
        return self(SpilledValueRead(key, read, size, read=True))

    def state_of(self, key: str) -> str:
        ts = self.state.tasks.get(key)
        return "forgotten" if ts is None else ts.state


@pytest.fixture
def worker(tmp_path):
    made = Worker(tmp_path)
    yield made
    made.store.close()


def test_a_task_reading_a_large_input_from_disk_waits_for_the_read_with_its_slot(worker):
    assert worker(task("t", "a", "b")) == [ReadSpilled(["a"])]
    assert worker.state_of("t") == "reading" and worker.state.executing == {"t"}
    assert worker(task("u", "b")) == []  # (one thread, and it is t's)
    [execute] = worker.read("a")
    assert isinstance(execute, Execute) and execute.key == "t"
    assert execute.inputs["a"][0] == 1.0 and execute.inputs["b"] is worker.store["b"]
    assert worker.state_of("t") == "executing"
    assert worker.store.in_memory("a")  # back in memory, as a read on the loop puts it
    assert [entry[1:3] for entry in worker.state.story("t")] == [
        ("released", "ready"), ("ready", "reading"), ("reading", "executing")]


def test_an_input_two_tasks_wait_for_is_read_once(tmp_path):
    worker = Worker(tmp_path, nthreads=2)
    assert worker(task("t", "a"), task("u", "a")) == [ReadSpilled(["a"])]
    assert worker.state_of("t") == worker.state_of("u") == "reading"
    out = worker.read("a")
    assert [ins.key for ins in out] == ["t", "u"]
    assert out[0].inputs["a"] is out[1].inputs["a"]
    worker.store.close()


def test_a_small_input_on_disk_is_still_read_at_once(tmp_path):
    store = DataStore(target=1.5 * 2**20, directory=str(tmp_path), spill_compression="none",
                      writer=InlineWriter())
    state = WorkerState(1, ME, data=store)
    held = {"a": value(1, 2**20), "b": value(2, 2**20)}
    state.handle(DataPut(held, dict.fromkeys(held, 2**20)))
    assert store.on_disk("a")
    [execute] = state.handle(task("t", "a"))
    assert isinstance(execute, Execute) and execute.inputs["a"][0] == 1.0
    store.close()


def test_a_file_that_cannot_be_read_back_is_reported_and_its_input_fetched(worker):
    worker(task("t", "a"))
    out = worker(SpilledValueRead("a", lost="the spilled value of a cannot be read back"))
    assert SendToCenter(MissingData(key="a", worker=ME)) in out
    assert Fetch(PEER, ["a"]) in out
    assert worker.state_of("t") == "waiting" and not worker.state.executing
    assert "a" not in worker.state.data
    assert worker(task("u", "b"))[0].key == "u"  # its slot is free


def test_a_value_that_does_not_unpickle_errs_its_task_and_frees_its_slot(worker):
    worker(task("t", "a"))
    out = worker(SpilledValueRead("a", unloadable=("ImportError", "no module named m")))
    [erred] = [ins.message for ins in out if isinstance(ins, SendToCenter)]
    assert isinstance(erred, TaskErred) and erred.key == "t"
    assert erred.exception_type == "ImportError" and "could not load its input a" in erred.message
    assert worker.state_of("t") == "forgotten" and not worker.state.executing


def test_a_task_freed_while_it_reads_gives_its_slot_back(worker):
    worker(task("t", "a"))
    assert worker(task("u", "b")) == []
    [execute] = worker(FreeRequested(["t"]))
    assert execute.key == "u"  # t's slot went to u
    assert worker.read("a") == []  # the read ends for the store alone
    assert worker.store.in_memory("a") and worker.state_of("t") == "forgotten"


def test_a_restart_while_a_task_reads_frees_its_slot(worker):
    worker(task("t", "a"))
    worker(RestartRequested("restarting"))
    assert not worker.state.executing and not worker.state.loading
    assert worker(SpilledValueRead("a")) == []  # (freed meanwhile: nothing to read)


def test_an_input_back_in_memory_before_its_read_is_taken_from_memory(worker):
    worker(task("t", "a"))
    in_memory = worker.store["a"]  # (read on the loop meanwhile, as a peer's request may)
    [execute] = worker(SpilledValueRead("a"))  # (its turn came with the key no longer on disk)
    assert execute.inputs["a"] is in_memory


def test_the_readers_passed_over_for_a_value_read_back_on_a_thread_go_back_in_line(tmp_path):
    """As after a read on the loop: a ready task passed over while its input was on disk
    runs in its turn once the value is back, while it is in memory, not once none of the
    tasks with inputs in memory is left (by then it may have spilled again)."""
    from dist_worker.events import ExecutionSucceeded

    worker = Worker(tmp_path, nthreads=2)
    worker(task("t", "a", priority=10))
    out = worker(task("u", "a", priority=8), task("v", "c", priority=5),
                 task("w", "c", priority=1))
    assert [ins.key for ins in out] == ["v"]  # u passed over: its input is on disk
    [execute] = worker.read("a")
    assert execute.key == "t"
    [execute] = worker(ExecutionSucceeded("v", 0, 8, "int", 0.0, 0.0))[1:]
    assert execute.key == "u"  # before w, whose input was in memory all along
    worker.store.close()
