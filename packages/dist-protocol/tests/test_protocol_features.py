"""Protocol features: announced in hello/welcome, agreed per connection, enforced both ways."""
from __future__ import annotations

import asyncio

import pytest

from dist_protocol.errors import LocalProtocolError
from dist_protocol.features import (FEATURES, FEATURES_ENV, ON_REQUEST, agree,
                                    connecting_features, default_features)
from dist_protocol.handshake import AcceptorHandshake, InitiatorHandshake
from dist_protocol.framing import frames_to_bytes
from dist_protocol.messages import (OPS, Hello, Release, ScatterDone, Submit, TaskSpec, Welcome,
                                    encode_batch)
from dist_protocol.testing import comm_pair

pytestmark = pytest.mark.timeout(30)


def handshake(c_features, s_features, token=None):
    c = InitiatorHandshake("client", token=token, features=c_features)
    s = AcceptorHandshake(token=token, features=s_features)
    pending = [("C", m) for m in c.start()]
    sent = []
    while pending:
        side, msg = pending.pop(0)
        sent.append(msg)
        receiver = s if side == "C" else c
        pending += [("S" if side == "C" else "C", r) for r in receiver.receive(msg)]
    assert c.done and s.done
    return c, s, sent


@pytest.mark.parametrize("token", [None, "tok"])
def test_both_sides_agree_on_the_features_both_announced(token):
    c, s, sent = handshake(["scatter-done", "from-the-future"], ["scatter-done", "other"], token)
    assert c.features == s.features == {"scatter-done"}
    hello, welcome = sent[0], sent[1]
    assert isinstance(hello, Hello) and hello.features == ["from-the-future", "scatter-done"]
    assert isinstance(welcome, Welcome) and welcome.features == ["other", "scatter-done"]


def test_a_peer_that_announces_nothing_agrees_to_nothing_and_sends_no_features_field():
    c, s, sent = handshake(["scatter-done"], [])
    assert c.features == s.features == frozenset()
    assert sent[1].to_wire([]) == {"version": 1, "auth": False, "op": "welcome"}
    c, s, sent = handshake([], ["scatter-done"])
    assert c.features == s.features == frozenset()
    assert "features" not in sent[0].to_wire([])


def test_agree_treats_a_missing_list_as_empty():
    assert agree(["a", "b"], None) == frozenset()
    assert agree(["a", "b"], ["b", "c"]) == {"b"}


def test_default_features_are_all_known_unless_the_environment_names_fewer():
    assert default_features({}) == set(FEATURES)
    assert default_features({FEATURES_ENV: ""}) == frozenset()
    assert default_features({FEATURES_ENV: " scatter-done , "}) == {"scatter-done"}
    with pytest.raises(ValueError, match="scatter-dome"):
        default_features({FEATURES_ENV: "scatter-dome"})


def test_a_connecting_side_announces_a_feature_of_unasked_messages_only_on_request():
    """``worker-events`` makes the center send messages nobody asked for: a plain connection
    (a tool, a test reading its replies in order) must not get them by default."""
    assert {"worker-events", "worker-status"} <= ON_REQUEST <= FEATURES.keys()
    assert not connecting_features(environ={}) & ON_REQUEST
    assert connecting_features(environ={}) == default_features({}) - ON_REQUEST
    assert "worker-events" in connecting_features(["worker-events"], environ={})
    # the environment still withholds what it does not name, asked for or not
    assert connecting_features(["worker-events"], environ={FEATURES_ENV: "columns"}) == {
        "columns"}


def test_every_gated_op_names_a_known_feature():
    gated = {op: cls.feature for op, cls in OPS.items() if cls.feature}
    assert gated == {"scatter-done": "scatter-done", "key-recomputing": "key-recomputing",
                     "story": "story", "story-reply": "story", "retry": "retry",
                     "task-stream": "task-stream", "task-stream-reply": "task-stream",
                     "task-seceded": "secede", "fire-and-forget": "fire-and-forget",
                     **{op: "datasets" for op in ("want-keys", "publish-dataset", "get-dataset",
                                                  "list-datasets", "unpublish-dataset",
                                                  "dataset-reply")},
                     "adaptive-target": "retire-workers",
                     "adaptive-target-reply": "retire-workers",
                     "retire-workers": "retire-workers", "retire-workers-reply": "retire-workers",
                     "close-worker": "retire-workers", "session": "sessions",
                     "session-reply": "sessions", "replicate-reply": "waits",
                     "coordinate": "coordination", "coordinate-reply": "coordination",
                     "published": "coordination", "actor-call": "actors",
                     "actor-result": "actors", "upload-file": "uploads",
                     "upload-file-reply": "uploads",
                     **{op: "worker-plugins" for op in ("register-plugin",
                                                        "register-plugin-reply",
                                                        "unregister-plugin",
                                                        "unregister-plugin-reply")},
                     "rebalance": "rebalance", "rebalance-reply": "rebalance",
                     "task-spec": "task-specs", "task-spec-reply": "task-specs",
                     **{op: "worker-events" for op in ("worker-list", "worker-added",
                                                       "worker-removed")},
                     "worker-status": "worker-status",
                     "restarting-for-memory": "memory-restart",
                     "worker-terminated": "task-terminated",
                     "worker-alive": "nanny-vouch",
                     "worker-query": "worker-query", "worker-query-reply": "worker-query",
                     "restart-workers": "restart-workers",
                     "restart-workers-reply": "restart-workers"}
    assert set(gated.values()) <= FEATURES.keys()
    for cls in OPS.values():
        for _, _, feature in cls.gated_fields:
            assert feature in FEATURES


def test_a_gated_op_is_refused_locally_where_the_peer_did_not_announce_it():
    async def main():
        client, center = await comm_pair(acceptor_features=())
        assert client.features == center.features == frozenset()
        with pytest.raises(LocalProtocolError, match="scatter-done") as refused:
            client.send(ScatterDone(who_has={"x": ["w"]}))
        assert refused.value.code == "invalid-message"
        # Nothing was queued: the connection goes on as if the send never happened.
        client.send(Release(keys=["x"]))
        assert await center.recv() == Release(keys=["x"])
        client.close()
    asyncio.run(main())


def test_a_gated_op_travels_where_both_announced_it():
    async def main():
        client, center = await comm_pair()
        assert "scatter-done" in client.features and client.features == center.features
        client.send(ScatterDone(who_has={"x": ["w"]}))
        assert await center.recv() == ScatterDone(who_has={"x": ["w"]})
        client.close()
    asyncio.run(main())


def test_a_peer_that_sends_a_gated_op_it_did_not_agree_loses_its_connection():
    async def main():
        client, center = await comm_pair(initiator_features=())
        # A misbehaving peer: its connection would refuse, so the bytes go on the wire by hand.
        client.transport.write(frames_to_bytes(encode_batch([ScatterDone(who_has={"x": ["w"]})])))
        reason = await asyncio.wait_for(client.closed, 5)
        assert "invalid-message" in reason and "scatter-done" in reason
        assert center.abort_error is not None and center.abort_error.code == "invalid-message"
    asyncio.run(main())


def test_a_task_field_of_a_feature_is_refused_where_it_was_not_agreed():
    # TaskSpec.actor belongs to "actors": a submit carrying it needs the feature like an op.
    actor_task = Submit(tasks=[TaskSpec(key="c-1", function="m:Counter", actor=True)])
    plain_task = Submit(tasks=[TaskSpec(key="f-1", function="m:f")])
    assert actor_task.features_used() == {"actors"} and plain_task.features_used() == set()

    async def main():
        client, center = await comm_pair(acceptor_features=())
        with pytest.raises(LocalProtocolError, match="actors"):
            client.send(actor_task)
        client.send(plain_task)
        assert await center.recv() == plain_task
        with pytest.raises(LocalProtocolError, match="actors"):  # each submit, not its type
            client.send(actor_task)
        client.transport.write(frames_to_bytes(encode_batch([actor_task])))
        reason = await asyncio.wait_for(client.closed, 5)
        assert "invalid-message" in reason and "actors" in reason
    asyncio.run(main())


def test_the_features_a_type_may_need_cover_its_ops_its_fields_and_its_tasks_fields():
    """Where all of them are agreed, a connection checks the type once, not each message."""
    assert ScatterDone.features_possible() == {"scatter-done"}
    assert Release.features_possible() == frozenset()
    assert "actors" in Submit.features_possible()
    for cls in OPS.values():
        assert {feature for _, _, feature in cls.gated_fields} <= cls.features_possible()
        assert cls.feature_checked or not cls.features_possible()
