"""How primitives' values travel, and where published messages go (no cluster needed)."""
import asyncio
import queue
import weakref

import pytest
from dist_client.actors import ActorLost, lost_error
from dist_client.errors import LostDataError
from dist_client.event_log import EventHandlers, renew_subscriptions
from dist_client.primitives import Topics, Variable, encode
from dist_protocol.errors import CommClosedError, MissingDependency
from dist_protocol.messages import CoordinateReply, Published
from dist_protocol.serialize import KeyRef, deserialize, serialize


def test_plain_data_travels_as_msgpack_for_any_language():
    for value in (None, True, 3, 2.5, "s", b"b", [1, [2]], {"a": {"b": [None]}}):
        payload, keys = encode(value)
        assert payload.serializer == "msgpack" and keys == []
        assert deserialize(payload) == value


def test_what_msgpack_would_change_is_pickled():
    for value in ((1, 2), {1: "int key"}, {"s": {1, 2}}, 2**70, [(1,)]):
        payload, keys = encode(value)
        assert payload.serializer == "pickle" and keys == []
        assert deserialize(payload) == value


def test_published_messages_reach_every_inbox_of_their_topic_only():
    topics = Topics()
    first, second, other = queue.SimpleQueue(), queue.SimpleQueue(), queue.SimpleQueue()
    topics.add("t", first)
    topics.add("t", second)
    topics.add("u", other)
    payload, _ = encode("hello")
    published = Published(topic="t", value=payload)
    topics.deliver(published)
    assert first.get_nowait() is second.get_nowait() is published
    assert other.empty()
    assert topics.remove("t", first) is False  # another inbox still listens
    assert topics.remove("t", second) is True


def test_an_inbox_dropped_unclosed_gets_nothing_and_its_topic_is_let_go_once():
    topics = Topics()
    kept, dropped = queue.SimpleQueue(), queue.SimpleQueue()
    topics.add("t", kept)
    topics.add("u", dropped)
    gone = weakref.ref(dropped)
    del dropped  # a Sub dropped without close()
    assert gone() is None
    deserted: list[str] = []
    payload, _ = encode("m")
    for topic in ("t", "u", "u"):
        topics.deliver(Published(topic=topic, value=payload), deserted.append)
    assert deserted == ["u"]  # told once: the center is asked to stop sending it
    assert kept.get_nowait().value == payload and kept.empty()


class _Reconnected:
    """What ``renew_subscriptions`` sees of a client on its new connection."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.center = type("Comm", (), {"features": frozenset({"event-log"})})()
        self.topics = Topics()
        self.event_handlers = EventHandlers(lambda: None)  # type: ignore[arg-type,return-value]
        self.asked: list[tuple[str, str, str]] = []
        self.fail = fail

    async def ask(self, make):
        msg = make(len(self.asked))
        self.asked.append((msg.kind, msg.name, msg.action))
        if self.fail is not None:
            raise self.fail
        return CoordinateReply(id=msg.id)


def test_a_new_connection_subscribes_again_to_every_topic_listened_to_here():
    core = _Reconnected()
    inbox = queue.SimpleQueue()
    core.topics.add("pubsub", inbox)
    core.event_handlers.add("print", print)
    core.event_handlers.add("news", print)
    core.event_handlers.add("gone", print)
    core.event_handlers.remove("gone")
    asyncio.run(renew_subscriptions(core))
    assert sorted(core.asked) == [("log", "news", "subscribe"), ("log", "print", "subscribe"),
                                  ("topic", "pubsub", "subscribe")]


def test_a_connection_lost_while_subscribing_again_is_raised_for_the_next_one_to_retry():
    core = _Reconnected(CommClosedError("gone again"))
    core.event_handlers.add("news", print)
    with pytest.raises(CommClosedError):
        asyncio.run(renew_subscriptions(core))


def test_an_actors_loss_is_an_actor_lost_error_and_other_losses_are_not():
    assert isinstance(lost_error("ActorLost: the actor A is gone"), ActorLost)
    assert isinstance(lost_error("ActorLost: x"), LostDataError)
    assert type(lost_error("data for x was lost")) is LostDataError


class HoldingCore:
    """The part of a client core a primitive's value needs: futures made, holds handed over."""

    def __init__(self):
        self.unheld = []

    def future(self, key):
        return ("future", key)

    def unhold(self, key, state=None):
        self.unheld.append(key)


def variable_on(core):
    variable = Variable.__new__(Variable)
    variable._binding = (core, None, False)  # (core, executor, asynchronous)
    return variable


def test_key_references_in_a_value_become_futures_inside_any_container():
    core = HoldingCore()
    value = {"one": [KeyRef("a"), (1, KeyRef("b"))], "set": frozenset({KeyRef("a")})}
    reply = CoordinateReply(id=1, status="ok", value=serialize(value), keys=["a", "b"])
    assert variable_on(core)._value(reply) == {
        "one": [("future", "a"), (1, ("future", "b"))], "set": frozenset({("future", "a")})}
    assert core.unheld == ["a", "b"]  # the futures took the holds over


def test_a_reference_to_a_key_the_reply_does_not_name_is_a_missing_dependency():
    reply = CoordinateReply(id=1, status="ok", value=serialize([KeyRef("a"), KeyRef("gone")]),
                            keys=["a"])
    with pytest.raises(MissingDependency, match="'gone'"):
        variable_on(HoldingCore())._value(reply)


def test_a_multi_locks_arguments_are_checked_before_anything_is_sent():
    from dist_client import MultiLock

    with pytest.raises(TypeError, match="non-empty strings"):
        MultiLock(["x", ""])
    lock = MultiLock(["x", "y"])  # (no executor yet: bound at its first request)
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError, match="num_locks must be between 1 and the 2 names"):
        lock.acquire(num_locks=3)
    with pytest.raises(ValueError, match="not yet acquired"):
        lock.release()
    assert not lock.locked() and repr(lock) == "<MultiLock: ['x', 'y']>"


def test_a_span_records_the_keys_sent_inside_it_and_its_enclosing_spans():
    from dist_client.spans import SpanKeys, current_span, span

    record = SpanKeys()
    record.sent(["outside"])
    with span("a") as outer:
        record.sent(["k1"])
        with span("b", "c") as inner:
            assert current_span().name == ("a", "b", "c")
            record.sent(["k2", "k1"])
    assert current_span() is None
    assert record.keys(outer) == ["k1", "k2"] and record.keys(inner) == ["k2", "k1"]
    with pytest.raises(TypeError, match="strings"):
        with span(1):
            pass
