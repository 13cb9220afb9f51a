"""Coordination primitives and actors at the center, as transcripts: requests in, replies out."""
from dist_center.events import ClientConnected, CoordinationTimedOut
from dist_protocol.messages import (ComputeTask, Coordinate, CoordinateReply, FreeKeys,
                                    KeyInMemory, KeyLost, KeyRecomputing, Published, Restart)
from dist_protocol.serialize import Payload, serialize

ONE = serialize(1, ("msgpack",))
TWO = serialize(2, ("msgpack",))


def ask(center, kind, name, action, client="alice", request=1, **fields):
    return center.client_sent(Coordinate(id=request, kind=kind, name=name, action=action,
                                         **fields), client)


def ok(request, **fields):
    return CoordinateReply(id=request, status="ok", **fields)


def replies_to(out, client):
    return [msg for to, msg in out if to == client]


# -- queue --------------------------------------------------------------------------------------

def test_a_queue_hands_out_values_first_in_first_out(center):
    assert ask(center, "queue", "q", "put", value=ONE) == [("alice", ok(1))]
    assert ask(center, "queue", "q", "put", request=2, value=TWO) == [("alice", ok(2))]
    assert ask(center, "queue", "q", "size", request=3) == [("alice", ok(3, count=2))]
    assert ask(center, "queue", "q", "get", request=4) == [("alice", ok(4, value=ONE))]
    assert ask(center, "queue", "q", "get", request=5) == [("alice", ok(5, value=TWO))]
    assert "q" not in center.state.coordination.primitives  # empty: forgotten


def test_a_get_from_an_empty_queue_waits_for_a_put_then_times_out_when_none_comes(center):
    center.connect("bob")
    assert ask(center, "queue", "q", "get", client="bob", request=7, timeout=5.0) == []
    assert ask(center, "queue", "q", "put", value=ONE) == [("alice", ok(1)),
                                                            ("bob", ok(7, value=ONE))]
    assert ask(center, "queue", "q", "get", client="bob", request=8, timeout=5.0) == []
    assert center(CoordinationTimedOut("bob", 8)) == [
        ("bob", CoordinateReply(id=8, status="timeout"))]
    assert center(CoordinationTimedOut("bob", 7)) == []  # answered long ago: no news
    assert center.state.coordination.primitives == {}


def test_a_full_queue_makes_puts_wait_until_a_get_makes_room(center):
    center.connect("bob")
    assert ask(center, "queue", "q", "put", value=ONE, limit=1) == [("alice", ok(1))]
    assert ask(center, "queue", "q", "put", request=2, value=TWO, limit=1) == []
    assert ask(center, "queue", "q", "put", request=3, value=TWO, timeout=0, limit=1) == [
        ("alice", CoordinateReply(id=3, status="timeout"))]
    assert ask(center, "queue", "q", "get", client="bob") == [("bob", ok(1, value=ONE)),
                                                               ("alice", ok(2))]
    assert ask(center, "queue", "q", "get", client="bob", request=2) == [
        ("bob", ok(2, value=TWO))]


def test_futures_in_a_queue_stay_alive_and_go_to_whoever_gets_them(center):
    center.connect("bob")
    center.join("w1")
    center.submit("x")
    center.finish("x")
    ask(center, "queue", "q", "put", value=ONE, keys=["x"])
    assert center.release("x") == []  # the queue holds it: nothing is freed
    assert center.state_of("x") == "memory"

    out = ask(center, "queue", "q", "get", client="bob")

    assert out == [("bob", ok(1, value=ONE, keys=["x"])),
                   ("bob", KeyInMemory(key="x", nbytes=8, type="int", workers=["w1"]))]
    assert center.task("x").wanted_by == {"bob"}
    assert center.release("x", client="bob") == [("w1", FreeKeys(keys=["x"]))]


def test_a_restart_empties_what_a_queue_held_and_the_queue_goes_on(center):
    center.join("w1")
    center.submit("x")
    center.finish("x")
    ask(center, "queue", "q", "put", value=ONE, keys=["x"])
    center.client_sent(Restart(id=9))
    assert "<queue q>" not in center.state.clients
    out = ask(center, "queue", "q", "get", request=2)
    assert out[0] == ("alice", ok(2, value=ONE, keys=["x"]))
    assert out[1][0] == "alice" and isinstance(out[1][1], KeyLost)  # the key itself is gone
    assert ask(center, "queue", "q", "size", request=3) == [("alice", ok(3, count=0))]


def test_a_value_naming_keys_the_center_does_not_hold_is_refused(center, match):
    out = ask(center, "variable", "v", "set", value=ONE, keys=["nowhere"])
    assert out == [("alice", match(CoordinateReply, status="error"))]
    assert "nowhere" in out[0][1].error
    assert center.state.coordination.primitives == {}


# -- variable -----------------------------------------------------------------------------------

def test_a_variable_keeps_its_future_until_replaced_or_deleted(center):
    center.join("w1")
    center.submit("x", "y")
    center.finish("x")
    center.finish("y")
    ask(center, "variable", "v", "set", value=ONE, keys=["x"])
    center.release("x", "y")
    assert center.state_of("x") == "memory"
    assert center.state_of("y") == "forgotten"

    assert ask(center, "variable", "v", "get", request=2) == [
        ("alice", ok(2, value=ONE, keys=["x"])),
        ("alice", KeyInMemory(key="x", nbytes=8, type="int", workers=["w1"]))]
    center.release("x")
    assert ask(center, "variable", "v", "set", request=3, value=TWO) == [
        ("w1", FreeKeys(keys=["x"])), ("alice", ok(3))]
    assert center.state_of("x") == "forgotten"


def test_a_get_of_an_unset_variable_waits_for_the_set(center):
    center.connect("bob")
    assert ask(center, "variable", "v", "get", client="bob", timeout=2.0) == []
    assert ask(center, "variable", "v", "set", value=TWO) == [("alice", ok(1)),
                                                               ("bob", ok(1, value=TWO))]
    assert ask(center, "variable", "v", "delete", request=2) == [("alice", ok(2))]
    assert center.state.coordination.primitives == {}


# -- locks and semaphores -----------------------------------------------------------------------

def test_a_lock_held_by_a_client_that_disconnects_goes_to_the_next_waiter(center):
    center.connect("bob")
    assert ask(center, "lock", "L", "acquire", lease="a1") == [("alice", ok(1, count=1))]
    assert ask(center, "lock", "L", "acquire", client="bob", lease="b1", timeout=60.0) == []

    assert center.disconnect("alice") == [("bob", ok(1, count=1))]
    assert center.state.coordination.primitives["lock", "L"].leases == {"b1": "bob"}


def test_releasing_a_lease_not_held_is_an_error_and_changes_nothing(center, match):
    center.connect("bob")
    ask(center, "lock", "L", "acquire", lease="a1")
    out = ask(center, "lock", "L", "release", client="bob", lease="a1")
    assert out == [("bob", match(CoordinateReply, status="error"))]
    assert "not held by this client" in out[0][1].error
    assert center.state.coordination.primitives["lock", "L"].leases == {"a1": "alice"}
    assert ask(center, "lock", "L", "release", request=2, lease="a1") == [
        ("alice", ok(2, count=0))]


def test_a_semaphore_grants_max_leases_at_once_and_queues_the_rest(center):
    for n in range(3):
        out = ask(center, "semaphore", "S", "acquire", request=n, lease=f"l{n}", limit=2,
                  timeout=9.0)
        assert out == ([("alice", ok(n, count=n + 1))] if n < 2 else [])
    assert ask(center, "semaphore", "S", "count", request=5) == [("alice", ok(5, count=2))]
    assert ask(center, "semaphore", "S", "release", request=6, lease="l0") == [
        ("alice", ok(6, count=1)), ("alice", ok(2, count=2))]


def test_each_kind_has_names_of_its_own(center):
    assert ask(center, "lock", "name", "acquire", lease="a1") == [("alice", ok(1, count=1))]
    assert ask(center, "queue", "name", "put", request=2, value=ONE) == [("alice", ok(2))]
    assert ask(center, "variable", "name", "set", request=3, value=ONE) == [("alice", ok(3))]
    assert ask(center, "event", "name", "set", request=4) == [("alice", ok(4, count=1))]
    assert ask(center, "lock", "name", "release", request=5, lease="a1") == [
        ("alice", ok(5, count=0))]
    assert ask(center, "queue", "name", "get", request=6) == [("alice", ok(6, value=ONE))]
    assert ask(center, "variable", "name", "get", request=7) == [("alice", ok(7, value=ONE))]
    assert sorted(p["kind"] for p in center.state.coordination.describe()) == ["event", "variable"]


def test_unknown_kinds_and_actions_are_errors_naming_what_there_is(center):
    out = ask(center, "queue", "q", "pop")
    assert out[0][1].error == "a queue has no action 'pop'; it has: get, put, size"
    out = ask(center, "barrier", "q", "wait", request=2)
    assert out[0][1].error.startswith("unknown primitive kind 'barrier'")


# -- event and topic ----------------------------------------------------------------------------

def test_an_event_wakes_its_waiters_when_set(center):
    center.connect("bob")
    assert ask(center, "event", "E", "wait", client="bob", timeout=0) == [
        ("bob", CoordinateReply(id=1, status="timeout"))]
    assert ask(center, "event", "E", "wait", client="bob", request=2) == []
    assert ask(center, "event", "E", "set") == [("alice", ok(1, count=1)),
                                                 ("bob", ok(2, count=1))]
    assert ask(center, "event", "E", "wait", client="bob", request=3) == [
        ("bob", ok(3, count=1))]
    assert ask(center, "event", "E", "clear", request=2) == [("alice", ok(2, count=0))]
    assert center.state.coordination.primitives == {}


def test_a_topic_sends_each_message_to_its_subscribers_until_they_leave(center):
    center.connect("bob")
    assert ask(center, "topic", "T", "subscribe", client="bob") == [("bob", ok(1, count=1))]
    assert ask(center, "topic", "T", "publish", value=ONE) == [
        ("bob", Published(topic="T", value=ONE)), ("alice", ok(1, count=1))]
    center.disconnect("bob")
    assert ask(center, "topic", "T", "publish", request=2, value=TWO) == [
        ("alice", ok(2, count=0))]


def test_a_pickled_value_goes_to_its_readers_with_the_python_that_pickled_it(center):
    """The center never opens a value, but passes on which Python pickled it: a reader on
    another Python refuses the code in it."""
    pickled = serialize(lambda: 1, ("pickle",))
    tag = "cpython-3.11"
    center.connect("bob")
    assert ask(center, "topic", "T", "subscribe", client="bob") == [("bob", ok(1, count=1))]
    assert ask(center, "queue", "q", "put", value=pickled, pickled_with=tag) == [
        ("alice", ok(1))]
    assert ask(center, "queue", "q", "get", client="bob", request=2) == [
        ("bob", ok(2, value=pickled, pickled_with=tag))]
    assert ask(center, "variable", "v", "set", request=2, value=pickled, pickled_with=tag) \
        == [("alice", ok(2))]
    assert ask(center, "variable", "v", "get", client="bob", request=3) == [
        ("bob", ok(3, value=pickled, pickled_with=tag))]
    assert ask(center, "topic", "T", "publish", request=3, value=pickled,
               pickled_with=tag) == [
        ("bob", Published(topic="T", value=pickled, pickled_with=tag)),
        ("alice", ok(3, count=1))]
    # a put that waited for room keeps its tag too
    assert ask(center, "queue", "w", "put", request=4, value=ONE, limit=1) == [
        ("alice", ok(4))]
    assert ask(center, "queue", "w", "put", request=5, value=pickled, pickled_with=tag,
               limit=1) == []
    ask(center, "queue", "w", "get", client="bob", request=4)
    assert ask(center, "queue", "w", "get", client="bob", request=5) == [
        ("bob", ok(5, value=pickled, pickled_with=tag))]


# -- event log ----------------------------------------------------------------------------------

def test_an_event_log_keeps_its_last_entries_and_sends_each_to_its_subscribers(center):
    center.state.coordination.log_length = 2
    center.connect("bob")
    assert ask(center, "log", "L", "subscribe", client="bob") == [("bob", ok(1, count=1))]
    three = serialize(3, ("msgpack",))
    assert ask(center, "log", "L", "append", value=ONE) == [
        ("bob", Published(topic="L", value=ONE, kind="log")), ("alice", ok(1, count=1))]
    center.disconnect("bob")
    assert ask(center, "log", "L", "append", request=2, value=TWO) == [("alice", ok(2, count=2))]
    assert ask(center, "log", "L", "append", request=3, value=three) == [
        ("alice", ok(3, count=2))]
    assert ask(center, "log", "L", "read", request=4) == [
        ("alice", ok(4, count=2, values=[TWO, three]))]
    assert ask(center, "log", "other", "read", request=5) == [("alice", ok(5, count=0))]
    assert ask(center, "log", "*", "topics", request=6) == [
        ("alice", ok(6, count=1, value=serialize(["L"], ("msgpack",))))]


class Unvisitable(dict):
    """The primitives, which a departure may look up by name but not go through."""

    def _refuse(self, *args):
        raise AssertionError("a departure went through every primitive the center keeps")

    __iter__ = values = items = keys = _refuse  # type: ignore[assignment]


def test_a_departure_visits_only_what_its_client_subscribed_to_waits_on_or_holds(center):
    center.connect("bob")
    for n in range(50):  # kept for the center's life, as dask keeps its event logs
        ask(center, "log", f"log-{n}", "append", request=n, value=ONE)
    ask(center, "log", "log-7", "subscribe", client="bob")
    ask(center, "lock", "L", "acquire", client="bob", lease="b1")
    ask(center, "queue", "Q", "get", client="bob", request=2, timeout=60.0)
    ask(center, "topic", "T", "subscribe", client="bob", request=3)
    ask(center, "topic", "T", "unsubscribe", client="bob", request=4)  # no stake left there
    assert center.state.coordination.stakes == {
        "bob": {("log", "log-7"): 1, ("lock", "L"): 1, ("queue", "Q"): 1}}
    coordination = center.state.coordination
    coordination.primitives = Unvisitable(coordination.primitives)
    try:
        coordination.client_left("bob")
    finally:
        coordination.primitives = dict(dict.items(coordination.primitives))
    center.state.validate()
    assert coordination.stakes == {}
    assert coordination.waiting == {}
    assert len(coordination.primitives) == 50
    assert coordination.primitives["log", "log-7"].subscribers == set()
    assert ask(center, "lock", "L", "acquire", lease="a1", request=60) == [
        ("alice", ok(60, count=1))]


def test_stakes_go_as_they_are_answered_timed_out_and_released(center):
    center.connect("bob")
    ask(center, "event", "E", "wait", client="bob", timeout=5.0)
    ask(center, "variable", "V", "get", client="bob", request=2, timeout=5.0)
    ask(center, "semaphore", "S", "acquire", lease="a1", limit=1)
    ask(center, "semaphore", "S", "acquire", client="bob", request=3, lease="b1", limit=1,
        timeout=5.0)
    assert center.state.coordination.stakes["bob"] == {
        ("event", "E"): 1, ("variable", "V"): 1, ("semaphore", "S"): 1}
    ask(center, "event", "E", "set", request=2)
    center(CoordinationTimedOut("bob", 2))
    assert center.state.coordination.stakes["bob"] == {("semaphore", "S"): 1}
    ask(center, "semaphore", "S", "release", request=3, lease="a1")  # bob's wait becomes a lease
    assert center.state.coordination.stakes == {"bob": {("semaphore", "S"): 1}}
    ask(center, "semaphore", "S", "release", client="bob", request=4, lease="b1")
    assert center.state.coordination.stakes == {}


def test_an_event_is_a_msgpack_value_without_futures(center):
    [(_, reply)] = ask(center, "log", "L", "append", value=ONE, keys=["x"])
    assert reply.status == "error"  # x: not held by the center either
    [(_, reply)] = ask(center, "log", "L", "append", request=2)
    assert reply.status == "error" and "needs a value" in reply.error
    [(_, reply)] = ask(center, "log", "L", "append", request=3,
                       value=serialize(lambda: 1, ("pickle",)))
    assert reply.status == "error" and "msgpack, not pickle" in reply.error
    assert center.state.coordination.primitives == {}


# -- actors -------------------------------------------------------------------------------------

def actor_spec(center, key, **fields):
    return center.spec(key, actor=True, **fields)


def test_an_actor_is_lost_with_its_worker_even_where_copies_of_its_handle_remain(center):
    center.join("w1")
    center.join("w2")
    center.submit(actor_spec(center, "A"))
    assert center.processing_on("A") == "w1"
    center.finished("w1", "A")
    center.keys_added("w2", {"A": 8})  # a task on w2 fetched the handle
    assert center.who_has("A") == {"w1", "w2"}

    out = center.leave("w1", reason="killed")

    assert out[0] == ("w2", FreeKeys(keys=["A"]))
    assert out[1][0] == "alice" and isinstance(out[1][1], KeyLost)
    assert out[1][1].message.startswith("ActorLost: the actor A (int) is gone: ")
    assert center.state_of("A") == "lost"


def test_an_actor_with_restarts_left_is_made_again_on_another_worker(center):
    center(ClientConnected("carol", frozenset({"key-recomputing"})))
    center.join("w1")
    center.join("w2")
    center.submit(actor_spec(center, "A", max_restarts=1), client="carol")
    center.finished("w1", "A")

    out = center.leave("w1", reason="killed")

    assert ("carol", KeyRecomputing(key="A")) in out
    compute = [msg for to, msg in out if to == "w2" and isinstance(msg, ComputeTask)]
    assert compute and compute[0].actor is True
    center.finished("w2", "A")
    assert center.task("A").restarts == 1
    assert center.task("A").actor_host == "w2"
    out = center.leave("w2", reason="killed again")
    lost = [msg for to, msg in out if isinstance(msg, KeyLost)]
    assert lost and "after 1 restarts" in lost[0].message


def test_payloads_of_any_serializer_pass_through_unopened(center):
    opaque = Payload("pickle", [b"\x80\x05not really a pickle"])
    ask(center, "variable", "v", "set", value=opaque)
    assert ask(center, "variable", "v", "get", request=2) == [("alice", ok(2, value=opaque))]
