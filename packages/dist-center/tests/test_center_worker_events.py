"""Feature ``worker-events``: clients that agreed it are told of every worker joining and
leaving, in order, so that they never ask ``cluster-info`` to know who runs which Python;
clients that did not agree it are sent nothing of the kind."""
from dist_center.events import ClientSent, WorkerJoined
from dist_protocol.messages import (Environment, RegisterWorker, Session, SessionReply,
                                    WorkerAdded, WorkerList, WorkerRemoved, WorkerStatus)

FEED = frozenset({"worker-events"})
NEWER = {"implementation": "cpython", "python": "3.13.0", "packages": {}}


def feed(out) -> list[tuple[str, object]]:
    return [(to, m) for to, m in out if isinstance(m, (WorkerList, WorkerAdded, WorkerRemoved))]


def entry(address: str, nthreads: int = 1, environment: dict | None = None, **fields) -> dict:
    return {"address": address, "name": address, "nthreads": nthreads, "memory_limit": 0,
            "resources": {}, "environment": environment, "nanny": None, **fields}


def test_a_client_that_agreed_is_sent_the_workers_when_it_connects(center):
    center.join("w1", nthreads=2)

    assert feed(center.connect("bob", FEED)) == [("bob", WorkerList(workers=[entry("w1", 2)]))]
    assert feed(center.connect("carol")) == []


def test_joins_and_leaves_go_to_the_clients_that_agreed_only(center):
    center.connect("bob", FEED)
    env = Environment(implementation="cpython", python="3.13.0", packages={})

    joined = center(WorkerJoined(RegisterWorker(address="w2", nthreads=4, name="second"), env))
    left = center.leave("w2")

    assert feed(joined) == [("bob", WorkerAdded(worker=entry("w2", 4, NEWER, name="second")))]
    assert feed(left) == [("bob", WorkerRemoved(address="w2"))]


def test_a_worker_registering_again_is_removed_then_added(center):
    center.connect("bob", FEED)
    center.join("w1")

    out = center.join("w1", nthreads=3)

    assert feed(out) == [("bob", WorkerRemoved(address="w1")),
                         ("bob", WorkerAdded(worker=entry("w1", 3)))]


def test_a_client_gone_is_sent_nothing_more(center):
    center.connect("bob", FEED)
    center.disconnect("bob")

    assert feed(center.join("w1")) == []


def test_a_resumed_session_keeps_the_events_under_its_name(center):
    center.connect("bob", FEED)
    center.state.detached.add("bob")
    center.disconnect("bob")
    center.state.detached.add("bob")  # (a durable center keeps it for its reconnection)
    center.connect("bob-2", FEED)

    out = center(ClientSent("bob-2", Session(id=1, resume="bob")))
    assert [m for _, m in out if isinstance(m, SessionReply)][0].resumed

    assert feed(center.join("w1")) == [("bob", WorkerAdded(worker=entry("w1")))]


# -- feature worker-status ------------------------------------------------------------------------

STATUS = frozenset({"worker-status"})
FULL = "OSError: [Errno 28] no space left in /spill: 25 bytes free, 50 needed"


def statuses(out) -> list[tuple[str, object]]:
    return [(to, m) for to, m in out if isinstance(m, WorkerStatus)]


def test_a_worker_that_cannot_spill_is_told_once_to_the_clients_that_agreed(center):
    center.join("w1")
    center.connect("bob", STATUS)
    center.connect("carol")

    out = center.heartbeat("w1", paused=True, spill_error=FULL)

    assert statuses(out) == [("bob", WorkerStatus(address="w1", cannot_spill=FULL))]
    assert center.state.workers["w1"].status == "paused"
    # Pausing and resuming by turns as memory allows, with the disk still full: no news.
    assert statuses(center.heartbeat("w1", paused=False, spill_error=FULL)) == []
    assert statuses(center.heartbeat("w1", paused=True, spill_error=FULL + "!")) == []
    assert statuses(center.heartbeat("w1", paused=False)) == [
        ("bob", WorkerStatus(address="w1", cannot_spill=""))]


def test_a_client_connecting_is_told_of_the_workers_that_cannot_spill(center):
    center.join("w1")
    center.join("w2")
    center.heartbeat("w2", paused=True, spill_error=FULL)

    assert statuses(center.connect("bob", STATUS)) == [
        ("bob", WorkerStatus(address="w2", cannot_spill=FULL))]
