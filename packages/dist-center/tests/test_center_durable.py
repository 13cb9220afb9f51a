"""A center restarted on its state directory, as transcripts: the journal replayed with no
workers, nothing sent anywhere until the workers from before are back, what they hold taken
as done, sessions resumed by their clients, failures and retries replayed."""
from __future__ import annotations

from dist_center.events import (ClientConnected, ClientSent, DetachedTimedOut, Recovering,
                                RecoveryTimedOut, TaskFailed)
from dist_center.snapshot import state_events
from dist_center.state import CenterState
from dist_protocol.serialize import serialize
from dist_protocol.messages import (ComputeTask, KeyInMemory, Session, SessionReply, Submit,
                                    TaskErred)

BOOM = TaskErred(key="b", exception_type="ValueError", message="boom", traceback="tb")


def restarted(center, workers=("w1", "w2")):
    """The center as a restart would rebuild it: the events its clients sent, replayed."""
    journal = [ClientConnected("alice"),
               ClientSent("alice", Submit(tasks=[center.spec("a"), center.spec("b", "a"),
                                                 center.spec("c", "b")], wanted=["c"]))]
    center(*journal)
    return center(Recovering(frozenset(workers)))


def test_nothing_runs_until_the_workers_from_before_are_back(center):
    center.disconnect("alice")
    restarted(center)
    assert center.state.recovering and center.state.detached == {"alice"}
    assert center.state_of("a") == "no-worker"
    assert not [m for _, m in center.join("w1") if isinstance(m, ComputeTask)]
    # The second worker holds "a": it is in memory again, and "b" runs now, once.
    out = center.join("w2", keys={"a": 8})
    assert not center.state.recovering
    assert center.state_of("a") == "memory" and center.who_has("a") == {"w2"}
    assert [m.key for _, m in out if isinstance(m, ComputeTask)] == ["b"]


def test_workers_that_do_not_come_back_are_given_up_on(center):
    center.disconnect("alice")
    restarted(center)
    center.join("w1")
    out = center(RecoveryTimedOut())
    assert [m.key for _, m in out if isinstance(m, ComputeTask)] == ["a"]
    assert center.processing_on("a") == "w1"


def test_a_client_resumes_its_session_and_hears_of_what_settled(center):
    center.disconnect("alice")
    restarted(center)
    center.join("w1")
    center.join("w2")
    center.finish("a")
    center.finish("b")
    center.finish("c")  # (told to "alice", who has no connection: the server drops it)
    center.connect("client-9")
    out = center.client_sent(Session(id=1, resume="alice", keys=["c", "x"]), "client-9")
    assert out[0] == ("client-9", SessionReply(id=1, client="alice", durable=True,
                                               resumed=True, unknown=["x"]))
    assert ("alice", KeyInMemory(key="c", nbytes=8, type="int",
                                 workers=sorted(center.who_has("c")))) in out
    assert center.task("c").wanted_by == {"alice"} and "client-9" not in center.state.clients
    # A session is resumed once; a stranger gets a session of its own.
    center.connect("client-10")
    out = center.client_sent(Session(id=1, resume="alice"), "client-10")
    assert out == [("client-10", SessionReply(id=1, client="client-10", durable=True))]


def test_sessions_not_resumed_in_time_are_closed(center):
    center.disconnect("alice")
    restarted(center)
    center(DetachedTimedOut())
    assert center.state.clients == {} and center.state.tasks == {}


def test_a_failure_replayed_uses_a_retry_then_errs(center):
    center.disconnect("alice")
    center.connect("bob")
    center.submit(center.spec("b", retries=1), client="bob")
    center(TaskFailed("b", BOOM))
    assert center.state_of("b") == "no-worker" and center.task("b").retries_left == 0
    center(TaskFailed("b", BOOM))
    assert center.state_of("b") == "erred" and center.task("b").error == BOOM


def test_the_state_as_events_rebuilds_the_same_state(center):
    center.join("w1", nthreads=4)
    center.connect("bob")
    center.submit(center.spec("a"), center.spec("b", "a", retries=2), center.spec("c", "b"),
                  wanted=["c"])
    center.submit(center.spec("d"), center.spec("e", "d"), client="bob")
    center.finish("a")
    center.erred("w1", "b")  # a retry used
    center.finish("d")
    center.erred("w1", "e")
    center.erred("w1", "e")  # (not running any more: ignored)
    rebuilt = CenterState()
    rebuilt.handle(*state_events(center.state))
    rebuilt.validate()
    assert {k: ts.wanted_by for k, ts in rebuilt.tasks.items()} == \
        {k: ts.wanted_by for k, ts in center.state.tasks.items() if ts.spec is not None}
    assert rebuilt.tasks["b"].retries_left == 1
    assert rebuilt.tasks["e"].state == "erred"
    assert rebuilt.tasks["e"].error.message == "division by zero"
    assert rebuilt.clients == center.state.clients


def test_the_state_as_events_keeps_each_clients_inputs_and_the_datasets(center):
    from dist_protocol.messages import PublishDataset
    center.join("w1", nthreads=4)
    center.connect("bob")
    center.submit(center.spec("x"), center.spec("y", "x"), wanted=["y"])
    center.submit(center.spec("z", "x"), center.spec("d"), wanted=["z", "d"], client="bob")
    center.client_sent(PublishDataset(id=1, name="ds", keys=["d"]), "bob")
    center.client_sent(PublishDataset(id=2, name="code", data=serialize(len, ("pickle",)),
                                      pickled_with="cpython-3.11"), "bob")
    center.release("d", client="bob")
    rebuilt = CenterState()
    rebuilt.handle(*state_events(center.state))
    rebuilt.validate()
    assert set(rebuilt.tasks) == set(center.state.tasks) == {"x", "y", "z", "d"}
    assert all(ts.state != "erred" for ts in rebuilt.tasks.values())
    assert rebuilt.clients == center.state.clients
    assert rebuilt.datasets["ds"].keys == ["d"]
    assert rebuilt.datasets["code"].pickled_with == "cpython-3.11"  # (which Python pickled it)


def test_a_task_a_worker_finishes_for_the_center_before_its_restart_counts(center):
    center.disconnect("alice")
    restarted(center)
    center.join("w1")
    out = center.finished("w1", "a")
    assert center.state_of("a") == "memory" and center.who_has("a") == {"w1"}
    assert not [m for _, m in out if isinstance(m, ComputeTask)]  # still recovering
    # One nobody needs any more is dropped.
    center.finished("w1", "zzz")
    assert "zzz" not in center.state.tasks


def test_the_state_as_events_leaves_coordination_primitives_out(center):
    center.submit(center.spec("a"))
    center.state.clients["<queue q>"] = {"a"}  # as a queue holding a future would
    center.task("a").wanted_by = {"alice", "<queue q>"}
    events = state_events(center.state)
    assert all(getattr(event, "client", "") != "<queue q>" for event in events)
