"""``cancel`` with ``pending_only`` (concurrent.futures' ``shutdown(cancel_futures=True)``) of
tasks sent to a worker: the center asks for them back and cancels those the worker gives up;
those it had started run to the end."""
from __future__ import annotations

from dist_protocol.messages import (Cancel, KeyCancelled, KeyInMemory, StealReply, StealRequest,
                                    TaskSeceded)


def cancelled(out):
    return [(to, msg.key) for to, msg in out if isinstance(msg, KeyCancelled)]


def asked_back(out):
    return [(to, msg.keys) for to, msg in out if isinstance(msg, StealRequest)]


def cancel_unstarted(center, *keys, client="alice"):
    return center.client_sent(Cancel(keys=list(keys), pending_only=True), client)


def two_on_w1(center):
    """``a`` running on w1's one thread, ``b`` waiting there for it (the center cannot tell)."""
    center.join("w1")
    center.submit("a", "b")
    assert center.processing("w1") == ["a", "b"]


def test_tasks_on_a_worker_are_asked_back_and_cancelled_once_given_up(center):
    two_on_w1(center)

    center.submit("c")  # queued at the center
    out = cancel_unstarted(center, "a", "b", "c")

    assert asked_back(out) == [("w1", ["a", "b"])]
    assert cancelled(out) == [("alice", "c")]  # not the others before the worker answers

    out = center.worker_sent("w1", StealReply(keys=["b"], kept=["a"]))

    assert cancelled(out) == [("alice", "b")]
    assert center.state_of("b") == center.state_of("c") == "forgotten"
    assert center.processing("w1") == ["a"]
    assert center.state.cancelling_unstarted == {} and center.state.stealing == {}
    out = center.finished("w1", "a")
    assert [(to, msg.key) for to, msg in out if isinstance(msg, KeyInMemory)] == [("alice", "a")]


def test_a_task_that_starts_while_the_request_is_in_flight_runs_to_the_end(center):
    two_on_w1(center)
    cancel_unstarted(center, "b")

    out = center.worker_sent("w1", StealReply(keys=[], kept=["b"]))

    assert cancelled(out) == []
    assert center.processing_on("b") == "w1"
    assert center.state.cancelling_unstarted == {}
    center.finish("a")
    out = center.finished("w1", "b")
    assert [(to, msg.key) for to, msg in out if isinstance(msg, KeyInMemory)] == [("alice", "b")]


def test_a_task_that_finishes_before_the_answer_is_not_cancelled(center):
    two_on_w1(center)
    cancel_unstarted(center, "a")
    center.finished("w1", "a")

    out = center.worker_sent("w1", StealReply(keys=[], kept=["a"]))

    assert cancelled(out) == [] and center.state_of("a") == "memory"
    assert center.state.cancelling_unstarted == {}


def test_a_worker_leaving_before_it_answers_leaves_them_unstarted_and_cancelled(center):
    two_on_w1(center)
    center.join("w2")
    cancel_unstarted(center, "b")

    out = center.leave("w1")

    assert cancelled(out) == [("alice", "b")]
    assert center.processing_on("a") == "w2"  # not asked for: placed again
    assert center.state_of("b") == "forgotten"
    assert center.state.cancelling_unstarted == {} and center.state.stealing == {}


def test_a_task_another_client_holds_goes_on_for_it(center):
    center.connect("bob")
    two_on_w1(center)
    center.submit("b", client="bob")
    cancel_unstarted(center, "b")

    out = center.worker_sent("w1", StealReply(keys=["b"]))

    assert cancelled(out) == [("alice", "b")]
    assert center.task("b").wanted_by == {"bob"}
    assert center.processing_on("b") == "w1"  # placed again: the only worker
    assert ("w1", center.compute("b")) in out


def test_a_task_asked_back_already_is_not_asked_twice(center):
    center.join("w1")
    center.join("w2")
    center.submit("x")
    center.finished(center.processing_on("x"), "x")
    out = center.submit(*(center.spec(f"t{i}", "x") for i in range(10)))
    assert asked_back(out) == [("w1", ["t9", "t8"])]  # to be stolen by w2

    out = cancel_unstarted(center, "t9", "t7")

    assert asked_back(out) == [("w1", ["t7"])]
    out = center.worker_sent("w1", StealReply(keys=["t9", "t8", "t7"]))
    assert cancelled(out) == [("alice", "t9"), ("alice", "t7")]
    assert center.processing_on("t8") == "w2"  # stolen, as asked
    assert center.state_of("t9") == center.state_of("t7") == "forgotten"


def test_a_task_released_before_the_answer_is_not_answered_again(center):
    two_on_w1(center)
    cancel_unstarted(center, "b")
    center.release("b")

    out = center.worker_sent("w1", StealReply(keys=["b"]))

    assert cancelled(out) == [] and center.state_of("b") == "forgotten"
    assert center.state.cancelling_unstarted == {}


def test_long_running_tasks_are_running(center):
    two_on_w1(center)
    center.worker_sent("w1", TaskSeceded(key="a"))

    out = cancel_unstarted(center, "a")

    assert asked_back(out) == [] and cancelled(out) == []
