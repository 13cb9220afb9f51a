"""How primitives' values travel, and where published messages go (no cluster needed)."""
import queue

from dist_client.actors import ActorLost, lost_error
from dist_client.errors import LostDataError
from dist_client.primitives import Topics, encode
from dist_protocol.messages import Published
from dist_protocol.serialize import deserialize


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
    topics.deliver(Published(topic="t", value=payload))
    assert first.get_nowait() == second.get_nowait() == payload
    assert other.empty()
    assert topics.remove("t", first) is False  # another inbox still listens
    assert topics.remove("t", second) is True


def test_an_actors_loss_is_an_actor_lost_error_and_other_losses_are_not():
    assert isinstance(lost_error("ActorLost: the actor A is gone"), ActorLost)
    assert isinstance(lost_error("ActorLost: x"), LostDataError)
    assert type(lost_error("data for x was lost")) is LostDataError
