"""The client's state machine as transcripts: events in, messages and orders out; no sockets."""
import gc
import pickle
from concurrent.futures import CancelledError

import pytest
from dist_client.errors import CenterLostError, LostDataError, RemoteError
from dist_client.future import KeyState
from dist_client.core.state import ClientState, Fail, Finish, Recompute, Reply
from dist_protocol.serialize import Payload, deserialize
from dist_protocol.messages import (Cancel, KeyCancelled, KeyInMemory, KeyLost, KeyRecomputing,
                                    Release, Submit, TaskErred, TaskSpec, WhoHasReply)


def submit(*keys: str) -> Submit:
    return Submit(tasks=[], wanted=list(keys))  # the tasks' bodies do not matter here


def summary(orders) -> list[tuple]:
    """Orders as (kind, key, status-or-type) tuples, easy to compare whole."""
    out = []
    for order in orders:
        if isinstance(order, Finish):
            out.append(("finish", order.state.key))
        elif isinstance(order, Fail):
            out.append(("fail", order.state.key, order.status, type(order.exception).__name__))
        elif isinstance(order, Recompute):
            out.append(("recompute", order.state.key))
        else:
            out.append(("reply", type(order.message).__name__))
    return out


def apply(orders) -> None:
    """What the Executor does with the orders, for the transcripts that go on after them."""
    for order in orders:
        if isinstance(order, Finish):
            order.state.finish(order.message.nbytes, order.message.type, order.message.workers)
        elif isinstance(order, Fail):
            order.state.fail(order.exception, order.traceback, order.status)
        elif isinstance(order, Recompute):
            order.state.recomputing()


def test_last_handle_releases_after_what_was_queued_before():
    s = ClientState()
    s.hold("a")
    s.hold("a")
    s.hold("b")
    assert s.queue(submit("c"))
    assert not s.unhold("a")  # one handle left
    assert s.unhold("a")
    assert s.unhold("b")
    assert s.take_outbox() == [submit("c"), Release(keys=["a", "b"])]
    assert s.take_outbox() == []
    assert s.held() == []


def test_releasing_the_last_handle_of_a_pending_key_cancels_it_for_its_waiters():
    s = ClientState()
    pending, shared, finished = s.hold("a"), s.hold("b"), s.hold("c")
    s.hold("b")
    apply([Finish(finished, KeyInMemory(key="c", nbytes=1, type="int", workers=["w"]))])
    queued, cancel = s.unhold_released(shared)
    assert (queued, cancel) == (False, None)  # another handle still follows it
    for state in (pending, shared, finished):
        queued, cancel = s.unhold_released(state)
        assert queued
        if state is pending or state is shared:
            assert summary([cancel]) == [("fail", state.key, "cancelled", "CancelledError")]
            assert "released before it finished" in str(cancel.exception)
        else:
            assert cancel is None  # done: its value stays readable through the handle
    assert s.take_outbox() == [Release(keys=["a", "b", "c"])]


def test_release_never_overtakes_a_submit_queued_before_it():
    s = ClientState()
    s.queue(submit("y"))  # names x as a dependency, say
    s.hold("x")
    s.unhold("x")
    assert s.take_outbox() == [submit("y"), Release(keys=["x"])]


def test_releases_wait_behind_later_submits_in_one_message():
    """A chain's submits, each followed by a release of a key the next names as a
    dependency: the submits go in a row, the releases after them."""
    s = ClientState()
    for key in "abc":
        s.hold(key)
    s.queue(submit("x"))
    s.unhold("a")
    s.queue(submit("y"))
    s.unhold("b")
    s.queue(submit("z"))
    s.unhold("c")
    assert s.take_outbox() == [submit("x"), submit("y"), submit("z"),
                               Release(keys=["a", "b", "c"])]


def test_releases_fenced_by_a_finished_get_go_before_any_later_submit():
    """A graph's output released when ``get`` returns: the next graph may reuse the names of
    its inputs, which the center keeps while the output is held."""
    s = ClientState()
    s.hold("out")
    s.unhold("out")
    s.release_before_later_submits()
    s.queue(submit("y"))
    assert s.take_outbox() == [Release(keys=["out"]), submit("y")]
    s.release_before_later_submits()  # nothing to release: nothing queued
    assert s.take_outbox() == []


def test_a_submit_naming_a_key_to_release_or_another_message_goes_after_the_release():
    s = ClientState()
    s.hold("a")
    s.unhold("a")
    s.queue(submit("y"), submit("a"))  # a submitted again after its release: a new task
    s.hold("b")
    s.unhold("b")
    s.queue(Cancel(keys=["k"]))
    assert s.take_outbox() == [Release(keys=["a"]), submit("y"), submit("a"),
                               Release(keys=["b"]), Cancel(keys=["k"])]
    s.hold("c")
    s.unhold("c")
    task = TaskSpec(key="c", function="operator:add")
    s.queue(Submit(tasks=[task], wanted=[]))  # (its task, though not wanted)
    assert s.take_outbox() == [Release(keys=["c"]), Submit(tasks=[task], wanted=[])]


def test_no_release_while_not_connected_and_none_for_unknown_keys():
    s = ClientState()
    s.hold("a")
    assert not s.unhold("a", release=False)
    assert not s.unhold("never-held")
    assert s.take_outbox() == []
    assert not s.holds("a")


def test_keys_to_submit_new_and_cancelled_once_each():
    s = ClientState()
    s.hold("done").finish(1, "int", ["w"])
    cancelled = s.hold("cancelled")
    cancelled.fail(CancelledError(), status="cancelled")
    s.hold("pending")
    assert s.keys_to_submit(["new", "done", "cancelled", "pending", "new"]) \
        == ["new", "cancelled"]
    # A new life, of its own: the Futures cancelled stay so.
    assert s.hold("cancelled").status == "pending" and cancelled.status == "cancelled"
    failed = s.hold("failed")
    failed.fail(ValueError())
    assert s.keys_to_submit(["failed"]) == []
    s.take_outbox()
    assert s.keys_to_submit(["failed"], renew=("error", "lost", "cancelled")) == ["failed"]
    assert failed.status == "pending" and failed.exception is None
    # The center forgets the old failure before it hears of the new task.
    assert s.take_outbox() == [Release(keys=["failed"])]


def test_hold_to_submit_is_keys_to_submit_then_hold_of_one_key():
    one, two = ClientState(), ClientState()
    for s in (one, two):
        s.hold("done").finish(1, "int", ["w"])
        s.hold("cancelled").fail(CancelledError(), status="cancelled")
        s.hold("failed").fail(ValueError())
    for key in ("new", "done", "cancelled", "failed", "new"):
        state, new = one.hold_to_submit(key)
        assert new == bool(two.keys_to_submit([key])) and state is one.states[key]
        assert two.hold(key).refs == state.refs
    assert {k: (s.status, s.refs) for k, s in one.states.items()} \
        == {k: (s.status, s.refs) for k, s in two.states.items()}
    assert one.take_outbox() == two.take_outbox() == []


def test_center_messages_become_orders_for_held_keys_only():
    s = ClientState()
    for key in "abcd":
        s.hold(key)
    orders = s.center_sent([
        KeyInMemory(key="a", nbytes=8, type="int", workers=["w1"]),
        TaskErred(key="b", exception_type="ValueError", message="bad", traceback="tb"),
        KeyLost(key="c", message="gone"),
        KeyInMemory(key="not-held", nbytes=1),
        WhoHasReply(id=7, who_has={}),
    ])
    assert summary(orders) == [("finish", "a"), ("fail", "b", "error", "RemoteError"),
                               ("fail", "c", "lost", "LostDataError"), ("reply", "WhoHasReply")]
    assert isinstance(orders[1].exception, RemoteError) and orders[1].traceback == "tb"
    assert isinstance(orders[2].exception, LostDataError)
    assert isinstance(orders[-1], Reply) and orders[-1].message.id == 7
    apply(orders)
    assert [s.states[k].status for k in "abcd"] == ["finished", "error", "lost", "pending"]
    assert summary(s.center_sent([KeyRecomputing(key="a"), KeyRecomputing(key="x")])) \
        == [("recompute", "a")]


def test_the_echo_of_an_own_cancel_is_no_news():
    s = ClientState()
    s.hold("k")
    assert s.cancel(["k"])
    assert s.take_outbox() == [Cancel(keys=["k"])]
    s.states["k"].fail(CancelledError(), status="cancelled")
    # Submitted again before the echo came back: the echo must not cancel the new life.
    assert s.keys_to_submit(["k"]) == ["k"]
    s.hold("k")
    assert s.center_sent([KeyCancelled(key="k")]) == []
    assert s.states["k"].status == "pending"
    # A later cancel by someone else (another client, a restart) is news.
    assert summary(s.center_sent([KeyCancelled(key="k")])) \
        == [("fail", "k", "cancelled", "CancelledError")]


def test_two_cancels_of_one_key_expect_two_echoes():
    s = ClientState()
    s.hold("k")
    s.cancel(["k"])
    s.cancel(["k"])
    assert s.center_sent([KeyCancelled(key="k"), KeyCancelled(key="k")]) == []
    assert len(s.center_sent([KeyCancelled(key="k")])) == 1


def test_cancel_pending_only_expects_no_echo():
    s = ClientState()
    s.hold("k")
    s.cancel(["k"], pending_only=True)
    assert s.take_outbox() == [Cancel(keys=["k"], pending_only=True)]
    assert len(s.center_sent([KeyCancelled(key="k")])) == 1


def test_a_cancel_nobody_here_asked_for_ends_a_finished_key_too():
    # The center cancels a key this client did not cancel when it forgets it (another
    # client restarted the cluster): the value is gone with the workers' memory.
    s = ClientState()
    s.hold("k").finish(1, "int", ["w"])
    assert summary(s.center_sent([KeyCancelled(key="k")])) \
        == [("fail", "k", "cancelled", "CancelledError")]
    s.hold("e").fail(ValueError(), "", "error")
    assert s.center_sent([KeyCancelled(key="e")]) == []  # an error stays what it was


def test_keys_lost_with_their_center_are_submitted_again_without_a_release():
    # The error of each says "submit it again": the center reconnected to does not know them.
    s = ClientState()
    s.hold("done-then").fail(CenterLostError("not known"), status="lost")
    s.hold("pending-then").fail(CenterLostError("connection lost"), status="error")
    s.hold("failed").fail(ValueError())
    assert s.keys_to_submit(["done-then", "pending-then", "failed"]) \
        == ["done-then", "pending-then"]
    assert s.states["done-then"].status == s.states["pending-then"].status == "pending"
    assert s.states["failed"].status == "error"  # a task's own error stays, as dask's
    assert s.take_outbox() == []


def test_center_lost_fails_pending_keys_and_names_the_done_ones():
    s = ClientState()
    s.hold("done").finish(1, "int", ["w"])
    s.hold("pending")
    error = ConnectionError("center gone")
    fails, done = s.center_lost(error)
    assert summary(fails) == [("fail", "pending", "error", "ConnectionError")]
    assert fails[0].exception is error
    assert done == ["done"]


def test_unsent_messages_go_first_when_put_back():
    s = ClientState()
    s.queue(submit("a"))
    unsent = s.take_outbox()
    s.hold("b")
    s.unhold("b")
    s.put_back(unsent)
    assert s.take_outbox() == [submit("a"), Release(keys=["b"])]


def test_cancel_everything():
    s = ClientState()
    s.hold("done").finish(1, "int", ["w"])
    s.hold("failed").fail(ValueError())
    s.hold("pending")
    assert summary(s.cancel_everything("closed")) \
        == [("fail", "pending", "cancelled", "CancelledError")]
    orders = s.cancel_everything("restarted", finished_too=True)
    assert summary(orders) == [("fail", "done", "cancelled", "CancelledError"),
                               ("fail", "pending", "cancelled", "CancelledError")]
    assert "restarted" in str(orders[0].exception)


def test_hold_keeps_the_first_state_of_a_key():
    s = ClientState()
    mine = KeyState("k")
    assert s.hold("k", mine) is mine
    assert s.hold("k", KeyState("k")) is mine
    assert s.refs["k"] == 2


@pytest.mark.parametrize("handles", [1, 3])
def test_holds_and_unholds_balance(handles):
    s = ClientState()
    for _ in range(handles):
        s.hold("k")
    for _ in range(handles - 1):
        assert not s.unhold("k")
    assert s.unhold("k")
    assert s.refs == {} and s.states == {}


def test_a_small_pickled_value_is_kept_as_its_bytes_and_read_back_as_its_payload():
    # One pickle frame of bytes (most small results) is kept as those bytes: no Payload and
    # list of frames a key for the cyclic collector to walk while the user holds the futures.
    state = KeyState("k")
    state.finish(10, "int", ["w"], Payload("pickle", [pickle.dumps(41)]))
    assert type(state.small) is bytes and not gc.is_tracked(state.small)
    assert state.small_value == Payload("pickle", [pickle.dumps(41)])
    assert deserialize(state.small_value) == 41
    state.recomputing()
    assert state.small is None and state.small_value is None


@pytest.mark.parametrize("payload", [
    Payload("msgpack", [b"\x01"]),
    Payload("pickle", [pickle.dumps(1), b"buffer"]),
    Payload("pickle", [bytearray(pickle.dumps(1))]),
])
def test_any_other_small_value_is_kept_as_it_came(payload):
    state = KeyState("k")
    state.finish(1, "int", ["w"], payload)
    assert state.small_value is payload


def test_a_compressed_small_value_is_kept_with_its_compression():
    payload = Payload("pickle", [pickle.dumps(1)])
    payload.compression = ["lz4"]
    state = KeyState("k")
    state.small_value = payload
    assert state.small_value is payload


def test_the_handles_of_a_cancelled_life_let_go_of_that_life_only():
    s = ClientState()
    old = s.hold("k")
    s.hold("k")  # two cancelled Futures
    old.fail(CancelledError(), status="cancelled")
    assert s.keys_to_submit(["k"]) == ["k"]
    new = s.hold("k")
    assert not s.unhold("k", state=old)  # one released
    s.dropped.append(old)  # the other garbage-collected
    assert s.holds("k") and new.refs == 1 and old.refs == 0 and s.take_outbox() == []
    assert s.unhold("k", state=new)
    assert s.take_outbox() == [Release(keys=["k"])]
