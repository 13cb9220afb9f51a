"""The sans-I/O ``Connection``: bytes in, messages out; messages in, bytes out. No sockets."""
from __future__ import annotations

import os

import pytest

from dist_protocol.connection import COALESCE_BELOW, MAX_FRAMES_PER_BATCH, Connection
from dist_protocol.errors import HandshakeError, LimitExceeded, LocalProtocolError, ProtocolError
from dist_protocol.framing import FrameDecoder, Limits, frames_to_bytes
from dist_protocol.handshake import AcceptorHandshake, InitiatorHandshake
from dist_protocol.messages import (Authenticated, ComputeTask, Data, Error, GetData, Hello,
                                    KeyInMemory, PutData, Release, Submit, TaskFinished, Welcome,
                                    decode_batch, encode_batch)
from dist_protocol.serialize import Payload
from dist_protocol.testing import connection_pair

pytestmark = pytest.mark.timeout(30)


def wire(*messages) -> bytes:
    return frames_to_bytes(encode_batch(list(messages)))


def batches_in(buffers: list) -> list[list]:
    """The batches written, read as a peer that agreed column blocks (as ``pair`` does)."""
    data = b"".join(bytes(b) for b in buffers)
    return [decode_batch(frames, columnar=True) for frames in FrameDecoder().feed(data)]


def pair(who: str | None = "center", role: str = "client", token: str | None = None):
    return connection_pair(token=token, who=who, role=role)


@pytest.mark.parametrize("token", [None, "tok"])
def test_the_handshake_runs_inside_and_each_step_is_a_batch_of_its_own(token):
    client = Connection(InitiatorHandshake("client", token=token, name="alice"))
    center = Connection(AcceptorHandshake(token=token), who="center")
    steps = []
    sender, receiver = client, center
    while not (client.established and center.established):
        out = sender.data_to_send()
        steps += batches_in(out)
        for buf in out:
            assert receiver.receive_data(buf) == []
        sender, receiver = receiver, sender
    assert all(len(batch) == 1 for batch in steps)
    assert [type(b[0]) for b in steps] == ([Hello, Welcome] if token is None else
                                           [Hello, Welcome, type(steps[2][0]), Authenticated])
    assert (center.peer_role, center.peer_name) == ("client", "alice")
    assert client.version == center.version == 1


def test_nothing_can_be_sent_before_the_handshake_completes():
    client = Connection(InitiatorHandshake("client"))
    with pytest.raises(LocalProtocolError, match="before the handshake"):
        client.send(Release(keys=["x"]))


def test_everything_sent_in_between_travels_as_one_batch_and_arrives_in_order():
    client, center = pair()
    client.send(Release(keys=["a"]))
    client.send(Release(keys=["b"]), Submit(tasks=[]))
    out = client.data_to_send()
    assert batches_in(out) == [[Release(keys=["a"]), Release(keys=["b"]), Submit(tasks=[])]]
    assert client.data_to_send() == []
    assert center.receive_data(b"".join(bytes(b) for b in out)) == [
        Release(keys=["a"]), Release(keys=["b"]), Submit(tasks=[])]


def test_a_burst_is_cut_into_batches_under_the_frame_limit():
    client, worker = pair(who="worker")
    client.send(*(PutData(id=i, data={"k": Payload("bytes", [b"x"])})
                  for i in range(MAX_FRAMES_PER_BATCH + 5)))
    batches = batches_in(client.data_to_send())
    assert [len(b) for b in batches] == [MAX_FRAMES_PER_BATCH - 1, 6]


def test_byte_by_byte_whole_and_with_trailing_bytes_give_the_same_messages():
    data = wire(Release(keys=["a"])) + wire(GetData(id=1, keys=["a"]))
    expected = [Release(keys=["a"]), GetData(id=1, keys=["a"])]
    _, whole = pair(who=None)
    assert whole.receive_data(data) == expected
    _, slow = pair(who=None)
    got = []
    for i in range(len(data)):
        got += slow.receive_data(data[i:i + 1])
    assert got == expected
    _, trailing = pair(who=None)
    assert trailing.receive_data(data + b"\x01\x00") == expected
    assert not trailing.decoder.idle


@pytest.mark.parametrize("msg, sender, allowed", [
    (Submit(tasks=[]), "client", True),
    (ComputeTask(key="k", function="m:f"), "client", False),
    (TaskFinished(key="k", nbytes=1), "client", False),
    (KeyInMemory(key="k"), "center", True),
    (GetData(id=1, keys=[]), "center", False),
    (ComputeTask(key="k", function="m:f"), "center", True),
    (Data(id=1, data={}), "worker", True),
    (Submit(tasks=[]), "worker", False),
])
def test_an_op_sent_in_the_wrong_direction_raises_local_protocol_error(msg, sender, allowed):
    if sender == "client":
        conn, _ = pair(role="client")
    elif sender == "worker":
        _, conn = pair(who="worker")
    else:
        _, conn = pair(who="center")
    if allowed:
        conn.send(msg)
        assert batches_in(conn.data_to_send()) == [[msg]]
    else:
        with pytest.raises(LocalProtocolError) as refused:
            conn.send(msg)
        assert refused.value.code == "invalid-message" and msg.op in refused.value.message
        assert conn.data_to_send() == []


def test_a_server_refuses_what_its_peer_may_not_send_it():
    _, center = pair(who="center", role="client")
    with pytest.raises(ProtocolError) as refused:
        center.receive_data(wire(TaskFinished(key="k", nbytes=1)))
    assert refused.value.code == "invalid-message" and "clients" in refused.value.message
    _, worker = pair(who="worker", role="peer")
    assert worker.receive_data(wire(GetData(id=1, keys=["k"]))) == [GetData(id=1, keys=["k"])]


def test_handshake_messages_are_the_connections_own_and_out_of_turn_afterwards():
    client, center = pair()
    with pytest.raises(LocalProtocolError):
        client.send(Hello(min_version=1, max_version=1, role="client"))
    with pytest.raises(HandshakeError) as late:
        center.receive_data(wire(Hello(min_version=1, max_version=1, role="client")))
    assert late.value.code == "handshake-failed"


def test_messages_behind_the_handshakes_last_in_its_batch_are_handshake_failed():
    client = Connection(InitiatorHandshake("client"))
    client.data_to_send()
    with pytest.raises(HandshakeError) as caught:
        client.receive_data(wire(Welcome(version=1, auth=False), Release(keys=["x"])))
    assert caught.value.code == "handshake-failed" and "batch of its own" in caught.value.message


def test_the_limits_rise_with_the_batch_that_completes_the_handshake():
    center = Connection(AcceptorHandshake(), who="center", limits=Limits(max_frames=10))
    big = wire(Submit(tasks=[]), Release(keys=["x" * 5000]))
    with pytest.raises(LimitExceeded):  # before the handshake: one small frame per batch
        Connection(AcceptorHandshake()).receive_data(big)
    hello = wire(Hello(min_version=1, max_version=1, role="client"))
    assert center.receive_data(hello + big) == [Submit(tasks=[]), Release(keys=["x" * 5000])]
    assert center.decoder.limits.max_frames == 10


def test_an_error_from_the_peer_ends_the_connection_after_the_messages_before_it():
    client, center = pair()
    data = wire(Release(keys=["a"]), Error(code="limit-exceeded", message="too big"))
    assert center.receive_data(data + wire(Release(keys=["ignored"]))) == [Release(keys=["a"])]
    assert center.peer_error == Error(code="limit-exceeded", message="too big")
    assert center.state == "closed" and center.next_batch() is None


def test_send_error_replaces_what_is_queued_and_ends_the_connection():
    client, center = pair()
    center.send(KeyInMemory(key="a"))
    center.send_error(LimitExceeded("too many frames"))
    assert batches_in(center.data_to_send()) == [[Error(code="limit-exceeded",
                                                        message="too many frames")]]
    with pytest.raises(LocalProtocolError):
        center.send(KeyInMemory(key="b"))
    center.send_error(LimitExceeded("again"))  # only once
    assert center.data_to_send() == []


def test_release_gives_back_the_buffers():
    client, center = pair()
    stream = []
    for batch in range(100):  # 100 batches of 6 KB, fed at once: each read is filled
        client.send(Release(keys=[f"{batch}-{i:03d}" for i in range(500)]))
        stream += client.data_to_send()
    assert len(center.receive_data(b"".join(stream))) == 100
    assert len(center.get_buffer()) >= 64 * 1024
    center.release()
    assert len(center.get_buffer()) < 8 * 1024


def test_two_large_frames_in_a_row_are_written_each_as_it_is():
    client, worker = pair(who="worker")
    big = [os.urandom(COALESCE_BELOW), os.urandom(COALESCE_BELOW + 1)]
    client.send(PutData(id=1, data={"a": Payload("bytes", [big[0]]),
                                    "b": Payload("bytes", [big[1]])}),
                Release(keys=["after"]))
    out = client.data_to_send()
    assert sum(any(b is frame for frame in big) for b in out) == 2  # not copied
    [[put, release]] = batches_in(out)
    assert [bytes(put.data[k].frames[0]) for k in "ab"] == big
    assert release == Release(keys=["after"])
