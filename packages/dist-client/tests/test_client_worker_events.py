"""Feature ``worker-events``: the client's view of the workers comes from the center's
events, so that sending pickled code never asks ``cluster-info`` (no cluster needed)."""
from __future__ import annotations

import platform

import pytest
from dist_client import EnvironmentMismatch
from dist_client.core.client import ClientCore
from dist_client.environments import ClusterEnvironments
from dist_client.worker_events import apply, disk_stalls, merge_reply
from dist_protocol.messages import (ClusterInfoReply, Environment, KeyInMemory, WorkerAdded,
                                    WorkerList, WorkerRemoved, WorkerStatus)

pytestmark = pytest.mark.timeout(30)

ANY_WORKERS = {"workers": None, "allow_other_workers": False}


def entry(address: str, python: str = "3.11.7", name: str | None = None, **fields) -> dict:
    return {"address": address, "name": name or address, "nthreads": 2, "memory_limit": 0,
            "resources": {}, "environment": {"implementation": "cpython", "python": python,
                                             "packages": {}}, **fields}


def view(client: str = "3.11.7") -> ClusterEnvironments:
    return ClusterEnvironments(Environment(implementation="cpython", python=client,
                                           packages={}))


def test_the_view_follows_the_events_and_never_goes_stale():
    envs = view()
    seen = apply(WorkerList(workers=[entry("w1"), entry("w2", name="gpu")]), [], envs, 100.0)
    assert [w["address"] for w in seen] == ["w1", "w2"] and envs.fed
    assert envs.refresh_due(100.0 + 3600) is None

    seen = apply(WorkerAdded(worker=entry("w3", "3.13.0")), seen, envs, 101.0)
    assert list(envs.foreign()) == ["w3"]
    with pytest.raises(EnvironmentMismatch, match="w3 runs CPython 3.13.0"):
        envs.check_submit(None, False)
    envs.check_submit(["gpu"], False)  # restricted, by name, to our Python

    seen = apply(WorkerRemoved(address="w3"), seen, envs, 102.0)
    seen = apply(WorkerRemoved(address="w2"), seen, envs, 102.0)
    assert [w["address"] for w in seen] == ["w1"]
    assert envs.foreign() == {} and envs.names == {"w1": "w1"}
    envs.check_submit(None, False)


def test_a_worker_registering_again_replaces_what_was_known_of_it():
    envs = view()
    seen = apply(WorkerList(workers=[entry("w1", "3.13.0")]), [], envs, 100.0)
    seen = apply(WorkerAdded(worker=entry("w1")), seen, envs, 101.0)
    assert len(seen) == 1 and envs.foreign() == {}


def test_malformed_entries_are_left_out_rather_than_break_the_view():
    envs = view()
    seen = apply(WorkerList(workers=[{"name": "no address"}, {"address": "w1", "nthreads": "2"}]),
                 [], envs, 100.0)
    assert seen == [{"address": "w1", "name": "w1", "nthreads": 0, "memory_limit": 0}]
    assert apply(WorkerAdded(worker={"address": 5}), seen, envs, 101.0) is seen


def test_a_cluster_info_reply_older_than_the_events_keeps_the_workers_they_say():
    envs = view()
    seen = apply(WorkerList(workers=[entry("w1"), entry("w2")]), [], envs, 100.0)
    seen = apply(WorkerRemoved(address="w2"), seen, envs, 101.0)
    seen = apply(WorkerAdded(worker=entry("w3")), seen, envs, 101.0)

    replied = [entry("w1", keys=5), entry("w2", keys=1)]  # sent before those events were read
    assert merge_reply(replied, seen, envs) == [entry("w1", keys=5), entry("w3")]


def test_the_view_goes_back_to_asking_once_the_connection_is_lost():
    envs = view()
    apply(WorkerList(workers=[]), [], envs, 100.0)
    envs.connection_lost()
    assert envs.refresh_due(100.5) is None  # (still fresh: asked in the background later)
    assert envs.refresh_due(101.5) == "wait"


class CenterLink:
    """Stands for the connection to a center that agreed ``worker-events``."""

    features = frozenset({"worker-events"})
    is_closed = False

    def send(self, *messages) -> None:
        pass

    def flush(self) -> None:
        pass


@pytest.fixture
def core():
    core = ClientCore("127.0.0.1:1")  # never connected: the center's messages are handed in
    core.center = CenterLink()  # type: ignore[assignment]
    core.status = "running"
    asked: list = []

    async def ask(make):
        asked.append(make(1))
        raise AssertionError("asked the center")
    core.ask = ask  # type: ignore[method-assign]
    core.io.call = lambda fn: asked.append(fn)  # type: ignore[method-assign]
    yield core, asked
    core.io.stop()


def test_submits_never_ask_for_the_workers_where_the_center_sends_their_events(core):
    core, asked = core
    ours = platform.python_version()  # the core compares with the Python it runs on
    core._on_center_messages([WorkerList(workers=[entry("w1", ours)])])
    core.envs.updated -= 60.0  # a minute since the list: without events, long stale
    for _ in range(100):
        core.check_pickled_code(ANY_WORKERS)
    assert core.workers_seen == [entry("w1", ours)]

    core._on_center_messages([KeyInMemory(key="x", nbytes=8, type="int", workers=["w1"]),
                              WorkerAdded(worker=entry("w2", "3.99.0"))])
    with pytest.raises(EnvironmentMismatch, match="w2 runs CPython 3.99.0"):
        core.check_pickled_code(ANY_WORKERS)
    core.check_pickled_code({"workers": ["w1"], "allow_other_workers": False})

    core._on_center_messages([WorkerRemoved(address="w2")])
    core.check_pickled_code(ANY_WORKERS)
    assert asked == []


class OlderCenterLink(CenterLink):
    features: frozenset[str] = frozenset()


def test_with_a_center_without_the_feature_a_stale_view_is_asked_for_as_before():
    core = ClientCore("127.0.0.1:1")
    try:
        core.center = OlderCenterLink()  # type: ignore[assignment]
        core.status = "running"
        asked: list = []

        async def ask(make):
            asked.append(make(1).op)
            return ClusterInfoReply(id=1, workers=[entry("w1", "3.99.0")])
        core.ask = ask  # type: ignore[method-assign]

        with pytest.raises(EnvironmentMismatch, match="w1 runs CPython 3.99.0"):
            core.check_pickled_code(ANY_WORKERS)
        assert asked == ["cluster-info"] and not core.envs.fed
    finally:
        core.io.stop()


def test_a_worker_that_cannot_spill_is_named_in_what_a_late_wait_says():
    envs = view()
    seen = apply(WorkerList(workers=[entry("w1"), entry("w2", name="tight")]), [], envs, 1.0)
    assert disk_stalls(seen) == ""
    seen = apply(WorkerStatus(address="w2", cannot_spill="OSError: no space left"), seen,
                 envs, 2.0)
    assert disk_stalls(seen) == (
        " (meanwhile 1 of 2 workers cannot spill to disk, and pause whenever their memory "
        "reaches the spill threshold: tight (w2): OSError: no space left; free space in "
        "their --local-directory, or give them more memory)")
    seen = apply(WorkerStatus(address="w2", cannot_spill=""), seen, envs, 3.0)
    assert disk_stalls(seen) == ""
