"""The comm layer over real sockets on 127.0.0.1: handshakes, batching, a bad peer, big data.

Each test runs on asyncio's own loop and on uvloop (what the servers use when it is installed).
"""
from __future__ import annotations

import asyncio
import os
import struct
import time

import msgpack
import pytest

from dist_protocol.comm import connect, core, listen
from dist_protocol.errors import HandshakeError, InvalidMessage
from dist_protocol.framing import FrameDecoder, frames_to_bytes
from dist_protocol.messages import Data, Error, PutData, Release, decode_batch, encode_batch
from dist_protocol.serialize import Payload
from dist_protocol.timeouts import wait_for

pytestmark = pytest.mark.timeout(60)



async def echo_server(token: str | None = None):
    """A listener that sends every batch it receives straight back, as one batch."""
    accepted = []

    def on_comm(comm):
        accepted.append(comm)
        comm.set_handler(lambda messages: comm.send(*messages))
    listener = await listen("127.0.0.1:0", on_comm, token=token)
    return listener, accepted


async def raw_handshake(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A socket that has said hello (no token) and read the welcome, by hand."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    hello = {"op": "hello", "min_version": 1, "max_version": 1, "role": "client"}
    writer.write(frames_to_bytes([msgpack.packb([hello])]))
    [welcome] = decode_batch(await read_batch(reader))
    assert welcome.op == "welcome" and welcome.version == 1 and welcome.auth is False
    return reader, writer


async def read_batch(reader: asyncio.StreamReader) -> list:
    (nframes,) = struct.unpack("<Q", await reader.readexactly(8))
    lengths = struct.unpack(f"<{nframes}Q", await reader.readexactly(8 * nframes))
    return [await reader.readexactly(n) for n in lengths]


def test_a_server_that_never_answers_is_named_as_perhaps_not_a_dist_one(run):
    """The dashboard's port given for the center's: it accepts, and waits for HTTP."""
    async def main():
        held = []  # (a dropped StreamWriter closes its connection on Python 3.13)
        silent = await asyncio.start_server(lambda reader, writer: held.append(writer),
                                            "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        try:
            with pytest.raises(HandshakeError) as refused:
                await connect(f"127.0.0.1:{port}", role="client", timeout=0.5)
        finally:
            silent.close()
        return refused.value
    error = run(main())
    assert error.code == "handshake-timeout"
    assert "timed out after 0.5 s" in str(error) and "dashboard" in str(error)


@pytest.mark.parametrize("token", [None, "s3cret-token"])
def test_handshake_then_messages_both_ways(run, token):
    async def main():
        listener, accepted = await echo_server(token)
        comm = await connect(listener.address, role="client", name="alice", token=token)
        assert comm.version == 1 and comm.established
        comm.send(Release(keys=["x", "y"]))
        assert await comm.recv() == Release(keys=["x", "y"])
        [server_side] = accepted
        assert (server_side.peer_role, server_side.peer_name) == ("client", "alice")
        comm.close()
        listener.close()
    run(main())


def test_a_wrong_or_missing_token_is_refused_and_the_server_goes_on(run):
    async def main():
        listener, accepted = await echo_server("right-token")
        with pytest.raises(HandshakeError) as wrong:
            await connect(listener.address, role="client", token="wrong-token")
        assert wrong.value.code == "auth-failed"
        with pytest.raises(HandshakeError) as missing:
            await connect(listener.address, role="client")
        assert missing.value.code == "auth-failed" and "requires a token" in missing.value.message
        comm = await connect(listener.address, role="client", token="right-token")
        comm.send(Release(keys=["still-served"]))
        assert await comm.recv() == Release(keys=["still-served"])
        assert len(accepted) == 1
        listener.close()
    run(main())


def test_many_sends_in_one_loop_pass_travel_as_one_batch(run):
    async def main():
        batches = []
        listener = await listen("127.0.0.1:0", lambda comm: comm.set_handler(batches.append))
        comm = await connect(listener.address, role="client")
        for i in range(1000):
            comm.send(Release(keys=[f"key-{i}"]))
        while sum(map(len, batches)) < 1000:
            await asyncio.sleep(0.01)
        assert len(batches) == 1
        assert batches[0][-1] == Release(keys=["key-999"])
        listener.close()
    run(main())


def test_a_malformed_batch_closes_only_that_connection_with_an_error(run):
    async def main():
        listener, _ = await echo_server()
        healthy = await connect(listener.address, role="client")
        reader, writer = await raw_handshake(listener.address)
        writer.write(frames_to_bytes([msgpack.packb([{"op": "no-such-op"}])]))
        [error] = decode_batch(await read_batch(reader))
        assert isinstance(error, Error) and error.code == "unknown-op"
        assert await reader.read() == b""  # then the server closed the socket
        writer.close()
        healthy.send(Release(keys=["after"]))
        assert await healthy.recv() == Release(keys=["after"])
        listener.close()
    run(main())


def test_bytes_that_break_the_framing_get_an_error_naming_the_code(run):
    async def main():
        listener, _ = await echo_server()
        reader, writer = await raw_handshake(listener.address)
        writer.write(struct.pack("<Q", 0))  # a batch of zero frames
        [error] = decode_batch(await read_batch(reader))
        assert error.code == "malformed-frame"
        assert await reader.read() == b""
        writer.close()
        listener.close()
    run(main())


def test_an_unauthenticated_peer_may_not_send_large_batches(run):
    async def main():
        listener, _ = await echo_server("token")
        host, port = listener.address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(struct.pack("<QQ", 1, 1 << 20))  # announces a 1 MiB frame 0
        [error] = decode_batch(await read_batch(reader))
        assert error.code == "limit-exceeded"
        assert await reader.read() == b""
        writer.close()
        listener.close()
    run(main())


@pytest.mark.parametrize("token", [None, "token"])
def test_the_server_may_send_right_behind_its_last_handshake_message(run, token):
    """The acceptor's first real batch may reach the initiator in the same read as the
    handshake's last message; it is judged by the limits after the handshake."""
    async def main():
        big = Payload("bytes", [os.urandom(100_000)])

        def greet(comm):
            comm.send(Data(id=1, data={"a": big, "b": Payload("bytes", [b"b"])}))
        listener = await listen("127.0.0.1:0", greet, token=token)
        comm = await connect(listener.address, role="client", token=token)
        assert await comm.recv() == Data(id=1, data={"a": big, "b": Payload("bytes", [b"b"])})
        listener.close()
    run(main())


def test_a_50_megabyte_payload_round_trip(run):
    async def main():
        listener, _ = await echo_server()
        comm = await connect(listener.address, role="client")
        blob = os.urandom(50 * 2**20)
        comm.send(PutData(id=7, data={"big": Payload("bytes", [blob])}))
        echoed = await comm.recv()
        assert echoed.id == 7 and bytes(echoed.data["big"].frames[0]) == blob
        listener.close()
    run(main())


def test_the_decoder_receives_a_large_frame_into_its_own_buffer():
    """Frames above the direct-read threshold land in one bytearray: no staging copy."""
    frames = encode_batch([PutData(id=1, data={"x": Payload("bytes", [b"z" * 300_000])})])
    decoder = FrameDecoder()
    [batch] = decoder.feed(frames_to_bytes(frames))
    assert isinstance(batch[1], bytearray) and bytes(batch[1]) == b"z" * 300_000


def test_a_connection_with_much_buffered_gives_the_others_their_turn(run):
    """Batches read at once are handled in turns of a few milliseconds: the loop serves the
    other connections between them, and the order and the error handling stay the same."""
    async def main():
        order = []
        loop = asyncio.get_running_loop()

        def on_comm(comm):
            def slow_handler(messages):
                if not order:
                    loop.call_soon(order.append, "another connection's turn")
                time.sleep(0.002)  # handling each batch takes a while
                order.extend(msg.keys[0] for msg in messages)
            comm.set_handler(slow_handler)
        listener = await listen("127.0.0.1:0", on_comm)
        reader, writer = await raw_handshake(listener.address)
        batches = [frames_to_bytes([msgpack.packb([{"op": "release", "keys": [str(i)]}])])
                   for i in range(60)]
        bad = frames_to_bytes([msgpack.packb([{"op": "no-such-op"}])])
        writer.write(b"".join(batches) + bad)  # one write: read by the server at once
        [error] = decode_batch(await read_batch(reader))
        assert isinstance(error, Error) and error.code == "unknown-op"
        assert [x for x in order if x.isdigit()] == [str(i) for i in range(60)]
        assert order.index("another connection's turn") < 30
        writer.close()
        listener.close()
    run(main())


@pytest.mark.parametrize("failing", [0, 1], ids=["on-the-read", "on-a-later-turn"])
def test_a_bug_in_a_handler_closes_only_that_connection_with_an_internal_error(run, failing,
                                                                               monkeypatch):
    """Whether the batch is handled on the read that brought it or on a later turn of the loop
    (every batch after the first here: the turns are made to end at once)."""
    monkeypatch.setattr(core, "TURN", -1.0)

    async def main():
        handled = []

        def on_comm(comm):
            def handler(messages):
                for msg in messages:
                    if msg.keys[0] == str(failing):
                        raise RuntimeError("a bug")
                    handled.append(msg.keys[0])
                comm.send(*messages)
            comm.set_handler(handler)
        listener = await listen("127.0.0.1:0", on_comm)
        healthy = await connect(listener.address, role="client")
        reader, writer = await raw_handshake(listener.address)
        writer.write(b"".join(frames_to_bytes([msgpack.packb([{"op": "release",
                                                               "keys": [str(i)]}])])
                              for i in range(3)))  # one write: read by the server at once
        batches = []
        while True:
            [msg] = decode_batch(await read_batch(reader))
            batches.append(msg)
            if isinstance(msg, Error):
                break
        assert batches[-1].code == "internal-error" and "a bug" in batches[-1].message
        assert handled == [str(i) for i in range(failing)]
        assert await reader.read() == b""  # then the server closed the socket
        writer.close()
        healthy.send(Release(keys=["after"]))
        assert await healthy.recv() == Release(keys=["after"])
        healthy.close()
        listener.close()
    run(main())


def test_a_handler_failing_on_messages_queued_before_it_closes_that_connection(run):
    """Messages that came with the handshake wait until the server sets its handler, which
    gets them at once: what it raises then ends that connection as it would any other time
    (not the task serving the new connection, leaving the peer without an answer)."""
    async def main():
        set_up = asyncio.get_running_loop().create_future()

        def refuse(messages):
            raise InvalidMessage(f"not served here: {messages[0].keys}")

        async def on_comm(comm):
            await comm.recv()  # the batch's first message; the second waits in the queue
            comm.set_handler(refuse)
            set_up.set_result(comm)
        listener = await listen("127.0.0.1:0", on_comm)
        client = await connect(listener.address, role="client")
        client.send(Release(keys=["first"]), Release(keys=["second"]))  # one batch
        server_side = await wait_for(set_up, 10)
        await wait_for(client.closed, 10)
        assert server_side.is_closed
        assert client.peer_error is not None and "['second']" in client.peer_error.message
        listener.close()
    run(main())
