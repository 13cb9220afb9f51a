"""A client's cancel without force, as transcripts: as dask's, it takes with it the tasks
reading a key only that client holds (feature ``cancel-dependents``), and leaves what another
client, a dataset or fire-and-forget holds to go on."""
from __future__ import annotations

import pytest
from dist_center.cancelling import FEATURE, dependents_cancelled
from dist_center.snapshot import state_events
from dist_center.state import CenterState
from dist_protocol.messages import (Cancel, FireAndForget, FreeKeys, KeyCancelled, KeyInMemory,
                                    PublishDataset, Session)

CANCELS_DEPENDENTS = frozenset({FEATURE})


@pytest.fixture
def center(center):
    """``alice`` connected again, announcing the feature; ``bob`` announcing it too."""
    center.disconnect("alice")
    center.connect("alice", CANCELS_DEPENDENTS)
    center.connect("bob", CANCELS_DEPENDENTS)
    return center


def cancelled(out):
    return [(to, msg.key) for to, msg in out if isinstance(msg, KeyCancelled)]


def test_the_tasks_reading_the_key_are_cancelled_with_it(center):
    center.join("w1")
    center.submit("a", center.spec("b", "a"), center.spec("c", "a"))

    out = center.cancel("a")

    assert cancelled(out) == [("alice", "a"), ("alice", "b"), ("alice", "c")]
    assert ("w1", FreeKeys(keys=["a"])) in out  # taken back from its worker
    assert center.state.tasks == {} and center.state.clients["alice"] == set()


def test_a_chain_goes_through_tasks_nobody_holds_and_those_finished(center):
    """a -> b (in memory) -> m (held by nobody: only read) -> d (running): all go, and the
    workers drop what they hold and what they run."""
    center.join("w1", nthreads=2)
    center.submit("a", center.spec("b", "a"), center.spec("m", "b"), center.spec("d", "m"),
                  wanted=["a", "b", "d"])
    center.finish("a")
    center.finish("b")
    center.finish("m")
    assert center.processing_on("d") == "w1"

    out = center.cancel("a")

    assert sorted(cancelled(out)) == [("alice", "a"), ("alice", "b"), ("alice", "d")]
    freed = sorted(key for to, msg in out if isinstance(msg, FreeKeys) for key in msg.keys)
    assert freed == ["a", "b", "d", "m"]
    assert center.state.tasks == {}


def test_a_key_another_client_holds_is_not_cancelled_nor_what_reads_it(center):
    """As dask's: the cancel lets go of the key for alice only, and her task reading it goes
    on, since the key is computed anyway."""
    center.join("w1")
    center.submit("a")
    center.submit("a", client="bob")
    center.submit(center.spec("b", "a"))

    assert cancelled(center.cancel("a")) == [("alice", "a")]
    assert center.processing_on("a") == "w1" and center.state_of("b") == "waiting"
    out = center.finished("w1", "a")
    assert ("bob", KeyInMemory(key="a", nbytes=8, type="int", workers=["w1"])) in out
    assert center.processing_on("b") == "w1"


def test_a_dependent_another_client_holds_goes_on_with_its_inputs(center):
    """a (alice) -> b (alice), a -> c (bob) -> d (alice): b goes; c is bob's, so it and a run
    for him, and d, read through c, is alice's still."""
    center.join("w1")
    center.submit("a", center.spec("b", "a"))
    center.submit(center.spec("c", "a"), client="bob", wanted=["c"])
    center.submit(center.spec("d", "c"))

    assert cancelled(center.cancel("a")) == [("alice", "a"), ("alice", "b")]
    assert set(center.state.tasks) == {"a", "c", "d"}
    assert center.task("c").wanted_by == {"bob"} and center.task("d").wanted_by == {"alice"}
    center.finished("w1", "a")
    assert center.processing_on("c") == "w1"


def test_a_dependent_that_a_dataset_or_fire_and_forget_holds_goes_on(center):
    center.join("w1")
    center.submit("a", center.spec("b", "a"), center.spec("c", "a"))
    center.client_sent(PublishDataset(id=1, name="ds", keys=["b"]))
    center.client_sent(FireAndForget(keys=["c"]))

    assert cancelled(center.cancel("a")) == [("alice", "a")]
    assert set(center.state.tasks) == {"a", "b", "c"} and center.processing_on("a") == "w1"


def test_each_key_is_answered_once_when_named_and_reached(center):
    """The client counts the answers to its own cancels: a key both named and read by another
    named key is answered once."""
    center.join("w1")
    center.submit("a", center.spec("b", "a"), center.spec("c", "b"))

    out = center.client_sent(Cancel(keys=["a", "b"]))

    assert sorted(cancelled(out)) == [("alice", "a"), ("alice", "b"), ("alice", "c")]
    assert center.state.tasks == {}


def test_a_client_without_the_feature_keeps_the_tasks_reading_the_key(center):
    """An older client: as before, its tasks reading the key go on, the key kept as their
    input; nothing it holds is cancelled without its asking."""
    center.connect("old")
    center.join("w1")
    center.submit("a", center.spec("b", "a"), client="old")

    assert cancelled(center.cancel("a", client="old")) == [("old", "a")]
    assert center.task("b").wanted_by == {"old"} and center.processing_on("a") == "w1"


def test_cancelling_what_has_not_started_takes_no_dependents(center):
    """``pending_only`` (concurrent.futures' shutdown) names every future to cancel itself."""
    center.join("w1")
    center.submit("a", center.spec("b", "a"))

    out = center.client_sent(Cancel(keys=["b"], pending_only=True))

    assert cancelled(out) == [("alice", "b")]
    assert cancelled(center.client_sent(Cancel(keys=["a"], pending_only=True))) == []


def test_dependents_cancelled_reads_the_graph_only(center):
    center.submit("a", center.spec("b", "a"), center.spec("c", "b"))
    center.submit(center.spec("x", "a"), client="bob")
    assert sorted(dependents_cancelled(center.state, "alice", ["a"])) == ["b", "c"]
    assert dependents_cancelled(center.state, "bob", ["a"]) == []  # not bob's alone
    assert set(center.state.tasks) == {"a", "b", "c", "x"}


def test_the_feature_survives_a_rewritten_journal_and_a_resumed_session(center):
    center.submit("a", center.spec("b", "a"))
    rebuilt = CenterState()
    rebuilt.handle(*state_events(center.state))
    assert "alice" in rebuilt.cancels_dependents

    center.state.durable = True
    center.disconnect("bob")
    center.state.detached.add("alice")
    center.connect("client-2")
    center.client_sent(Session(id=1, resume="alice"), "client-2")
    assert center.state.cancels_dependents == {"alice"}
    assert sorted(cancelled(center.cancel("a"))) == [("alice", "a"), ("alice", "b")]
