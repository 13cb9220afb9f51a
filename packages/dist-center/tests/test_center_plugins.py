"""Worker plugins: kept as pickled bytes (bounded, replaced by name unless idempotent, gone
when unregistered), handed to each worker as it registers, kept across a restart and in the
durable state."""
import pytest

from dist_center.events import ClientSent
from dist_center.plugins import Plugins
from dist_center.server import JOURNALED_OPS
from dist_center.snapshot import state_events
from dist_center.state import CenterState
from dist_protocol.messages import (PluginSpec, RegisterPlugin, RegisterPluginReply, Restart,
                                    UnregisterPlugin, UnregisterPluginReply, WorkerRegistered)
from dist_protocol.serialize import Payload

pytestmark = pytest.mark.timeout(30)


def plugin(name, content=b"pickled", serializer="pickle"):
    return PluginSpec(name=name, content=Payload(serializer, [content]))


def registered(out, address):
    return [msg for to, msg in out if to == address and isinstance(msg, WorkerRegistered)]


def kept(reply):
    return [(p.name, bytes(p.content.frames[0])) for p in reply.plugins]


def test_a_worker_registering_gets_every_plugin_kept_in_registration_order(center):
    center.join("w1")
    assert center.client_sent(RegisterPlugin(id=1, plugin=plugin("a"))) == [
        ("alice", RegisterPluginReply(id=1))]
    center.client_sent(RegisterPlugin(id=2, plugin=plugin("b", b"B")))
    center.client_sent(RegisterPlugin(id=3, plugin=plugin("a", b"A2")))  # replaces a

    [reply] = registered(center.join("w2"), "w2")

    assert kept(reply) == [("b", b"B"), ("a", b"A2")]


def test_an_idempotent_registration_leaves_the_plugin_of_that_name(center):
    center.client_sent(RegisterPlugin(id=1, plugin=plugin("a", b"first")))

    out = center.client_sent(RegisterPlugin(id=2, plugin=plugin("a", b"second"),
                                            idempotent=True))
    assert out == [("alice", RegisterPluginReply(id=2, kept=False))]
    out = center.client_sent(RegisterPlugin(id=3, plugin=plugin("b"), idempotent=True))
    assert out == [("alice", RegisterPluginReply(id=3))]  # none of that name: kept

    [reply] = registered(center.join("w1"), "w1")
    assert kept(reply) == [("a", b"first"), ("b", b"pickled")]


def test_an_unregistered_plugin_is_not_given_to_workers_joining_after(center):
    center.client_sent(RegisterPlugin(id=1, plugin=plugin("a")))
    center.client_sent(RegisterPlugin(id=2, plugin=plugin("b")))

    assert center.client_sent(UnregisterPlugin(id=3, name="a")) == [
        ("alice", UnregisterPluginReply(id=3))]
    [(_, reply)] = center.client_sent(UnregisterPlugin(id=4, name="a"))
    assert "no worker plugin named 'a'" in reply.error

    [registration] = registered(center.join("w1"), "w1")
    assert [p.name for p in registration.plugins] == ["b"]


def test_a_restart_keeps_the_plugins_and_the_workers_coming_back_get_them(center):
    center.join("w1")
    center.client_sent(RegisterPlugin(id=1, plugin=plugin("a")))
    center.client_sent(Restart(id=2))

    [reply] = registered(center.join("w1"), "w1")

    assert [p.name for p in reply.plugins] == ["a"]


def test_plugins_that_would_pass_the_bounds_are_refused_and_change_nothing():
    plugins = Plugins(max_plugins=2, max_bytes=10)

    def register(name, content):
        return plugins.register(RegisterPlugin(id=1, plugin=plugin(name, content))).error

    assert register("a", b"12345") is None
    assert "at most 10 bytes" in register("b", b"123456")
    assert register("b", b"12345") is None
    assert "at most 2 worker plugins" in register("c", b"")
    assert register("a", b"1") is None  # replacing frees the older's bytes
    assert [p.name for p in plugins.all()] == ["b", "a"] and plugins.nbytes == 6


def test_plugins_without_a_name_or_not_pickled_are_refused(center):
    [(_, reply)] = center.client_sent(RegisterPlugin(id=1, plugin=plugin("")))
    assert "needs a name" in reply.error
    [(_, reply)] = center.client_sent(RegisterPlugin(id=2, plugin=plugin("p", serializer="bytes")))
    assert "'pickle' payload" in reply.error
    assert center.state.plugins.all() == []


def test_registrations_are_journaled_and_replay_to_the_same_plugins(center):
    assert RegisterPlugin in JOURNALED_OPS and UnregisterPlugin in JOURNALED_OPS
    messages = [RegisterPlugin(id=1, plugin=plugin("a")),
                RegisterPlugin(id=2, plugin=plugin("b", b"B")),
                RegisterPlugin(id=3, plugin=plugin("a", b"ignored"), idempotent=True),
                UnregisterPlugin(id=4, name="b")]
    for msg in messages:
        center.client_sent(msg)
    replayed = CenterState()
    replayed.handle(*(ClientSent("alice", msg) for msg in messages))

    assert replayed.plugins.all() == center.state.plugins.all() == [plugin("a")]


def test_the_state_as_events_keeps_the_plugins(center):
    center.client_sent(RegisterPlugin(id=1, plugin=plugin("a")))
    center.client_sent(RegisterPlugin(id=2, plugin=plugin("b", b"B")))
    rebuilt = CenterState()
    rebuilt.handle(*state_events(center.state))
    assert rebuilt.plugins.all() == center.state.plugins.all()
