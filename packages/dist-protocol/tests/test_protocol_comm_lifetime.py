"""A closed connection is freed at once, by reference counting alone.

Servers raise the collector's thresholds (``tune_garbage_collector``), so a closed ``Comm`` left
in a reference cycle -- with its receive buffer -- would live until a rare full collection:
long-lived centers and workers grew by the buffer's size per connection. These tests run with
the collector disabled and check, by weak references, that nothing of a closed connection
survives; when something does, the failure names what still refers to it.
"""
from __future__ import annotations

import asyncio
import gc
import struct
import weakref

import msgpack
import pytest

from dist_protocol.comm import connect, listen
from dist_protocol.errors import HandshakeError
from dist_protocol.framing import frames_to_bytes
from dist_protocol.messages import Release

pytestmark = pytest.mark.timeout(60)



@pytest.fixture(autouse=True)
def no_collector():
    """Only reference counting frees objects during a test: a cycle shows as a survivor."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


def describe_referrers(obj: object, depth: int = 3) -> str:
    """What keeps ``obj`` alive, a few levels up, for the failure message."""
    lines: list[str] = []
    seen = {id(obj)}

    def walk(target: object, level: int) -> None:
        referrers = gc.get_referrers(target)
        seen.add(id(referrers))
        for referrer in referrers:
            kind = type(referrer).__name__
            if id(referrer) in seen or kind == "list_iterator" or (
                    kind == "frame" and referrer.f_code.co_name == "walk"):
                continue
            seen.add(id(referrer))
            lines.append("  " * level + f"<- {type(referrer).__name__}: {str(referrer)[:120]}")
            if level < depth:
                walk(referrer, level + 1)
    walk(obj, 0)
    return "\n".join(lines[:40])


async def settle() -> None:
    """A few passes of the loop: callbacks already scheduled (connection_lost, close
    callbacks, finished tasks) run and drop their references."""
    for _ in range(5):
        await asyncio.sleep(0)


def assert_freed(refs: list[weakref.ref]) -> None:
    survivors = [ref() for ref in refs if ref() is not None]
    if survivors:
        first = survivors[0]
        del survivors
        pytest.fail(f"{first!r} survived its close; referred to by:\n{describe_referrers(first)}")


class Server:
    """A listener whose connections echo, with handlers that close over their comm (as the
    center's and workers' do), tracked by weak references only."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref] = []
        self.closed = 0
        self.all_closed = asyncio.Event()
        self.listener = None
        self.batches_echoed = 0
        self.echoed_enough = asyncio.Event()
        self.enough = 0

    async def start(self, token: str | None = None) -> str:
        self.listener = await listen("127.0.0.1:0", self._on_comm, token=token)
        return self.listener.address

    def _on_comm(self, comm) -> None:
        self.refs.append(weakref.ref(comm))
        def echo(messages) -> None:
            comm.send(*messages)
            self.batches_echoed += 1
            if self.enough and self.batches_echoed >= self.enough:
                self.echoed_enough.set()
        comm.set_handler(echo)
        comm.on_close(self._on_close)

    def _on_close(self, _comm) -> None:
        self.closed += 1
        if self.closed == len(self.refs):
            self.all_closed.set()


@pytest.mark.parametrize("closer", ["client", "server"])
def test_a_closed_connection_leaves_nothing_behind(run, closer):
    async def main():
        server = Server()
        address = await server.start()
        client_refs = []
        for i in range(3):
            comm = await connect(address, role="client", name=f"c{i}")
            comm.send(Release(keys=[f"k{i}"]))
            assert await comm.recv() == Release(keys=[f"k{i}"])
            client_refs.append(weakref.ref(comm))
            if closer == "client":
                comm.close("done")
            else:
                server.refs[-1]().close("done")
            await comm.closed
            del comm
        await asyncio.wait_for(server.all_closed.wait(), 10)
        await settle()
        assert_freed(client_refs)
        assert_freed(server.refs)
        server.listener.close()
    run(main())


def test_a_connection_aborted_for_bad_bytes_leaves_nothing_behind(run):
    async def main():
        server = Server()
        address = await server.start()
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        hello = {"op": "hello", "min_version": 1, "max_version": 1, "role": "client"}
        writer.write(frames_to_bytes([msgpack.packb([hello])]))
        writer.write(struct.pack("<Q", 0))  # after the handshake: a batch of zero frames
        await reader.read()  # the welcome, the error, then the server hangs up
        writer.close()
        await asyncio.wait_for(server.all_closed.wait(), 10)
        await settle()
        assert_freed(server.refs)
        server.listener.close()
    run(main())


def test_a_refused_handshake_leaves_nothing_behind(run):
    async def main():
        server = Server()
        address = await server.start(token="right")
        for _ in range(3):
            try:
                await connect(address, role="client", token="wrong")
            except HandshakeError as exc:
                assert exc.code == "auth-failed"
                # The error refers to the comm (through its traceback), not the other way round.
                error_ref = weakref.ref(exc)
            else:
                raise AssertionError("a wrong token was accepted")
        await settle()
        assert error_ref() is None, describe_referrers(error_ref())
        assert server.refs == []  # refused before on_comm
        server.listener.close()
    run(main())


def test_a_closed_connection_gives_back_its_receive_buffer(run):
    """Even while something still holds a closed comm, its buffers are gone."""
    async def main():
        server = Server()
        address = await server.start()
        comm = await connect(address, role="client")
        comm.send(Release(keys=["x"]))
        await comm.recv()
        assert len(comm.decoder.get_buffer()) < 8 * 1024  # small messages, a small buffer
        # Batches each below the size read into a buffer of its own, all echoed before this
        # side reads any of the echo: the reads find more than the buffer holds, and fill it
        # (without the pause, a loaded machine may hand the echo over in small reads).
        server.enough = 1 + 400
        comm.transport.pause_reading()
        for batch in range(400):
            comm.send(Release(keys=[f"{batch}-{i:05d}" for i in range(500)]))
            comm.flush()  # a batch of its own
        await asyncio.wait_for(server.echoed_enough.wait(), 30)
        comm.transport.resume_reading()
        largest_offered = 0
        for _ in range(400):
            await comm.recv()
            largest_offered = max(largest_offered, len(comm.decoder.get_buffer()))
        assert largest_offered >= 64 * 1024  # the staging buffer grew for it
        comm.close()
        await comm.closed
        assert len(comm.decoder.get_buffer()) < 8 * 1024
        server.listener.close()
    run(main())


def test_messages_received_before_the_close_can_still_be_read(run):
    """Letting go at the close keeps what was already received for ``recv``."""
    async def main():
        sent = [Release(keys=["a"]), Release(keys=["b"])]

        def on_comm(comm):
            comm.send(*sent)
            comm.close("bye")
        listener = await listen("127.0.0.1:0", on_comm)
        comm = await connect(listener.address, role="client")
        await comm.closed
        assert [await comm.recv(), await comm.recv()] == sent
        listener.close()
    run(main())
