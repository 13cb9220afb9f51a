"""``Comm.write_now``: another thread writes to the socket itself, in order with the loop.

Each test runs on asyncio's own loop and on uvloop, over real sockets on 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import os
import threading

import pytest

from dist_protocol.comm import connect, listen
from dist_protocol.errors import CommClosedError, InvalidMessage
from dist_protocol.messages import PutData, Release
from dist_protocol.serialize import Payload
from dist_protocol.timeouts import wait_for
from dist_protocol.testing import comm_pair

pytestmark = pytest.mark.timeout(60)


class Received(list):
    """What a server's connections received, in order; and why any of them closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[str | None] = []


async def collecting_server():
    """A listener whose connections keep every message they receive, in order."""
    received = Received()
    arrived = asyncio.Event()

    def on_comm(comm):
        def handler(messages):
            received.extend(messages)
            arrived.set()

        def on_close(_):
            received.closed.append(comm.close_reason)
            arrived.set()
        comm.set_handler(handler)
        comm.on_close(on_close)
    listener = await listen("127.0.0.1:0", on_comm)
    return listener, received, arrived


async def until(condition, arrived: asyncio.Event, received: Received) -> None:
    """Until ``condition()`` holds; fails at once, with the reason, should the server's side
    of the connection close first."""
    async def waiting() -> None:
        while not condition():
            assert not received.closed, f"the server's connection closed: {received.closed}"
            await arrived.wait()
            arrived.clear()
    await wait_for(waiting(), 30)


def in_thread(fn) -> list:
    """Run ``fn`` on a thread of its own; its result, or what it raised, in a list."""
    out: list = []

    def body():
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            out.append(exc)
    thread = threading.Thread(target=body)
    thread.start()
    return [thread, out]


async def joined(pending: list):
    thread, out = pending
    while thread.is_alive():
        await asyncio.sleep(0.001)
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def test_a_thread_writes_itself_once_allowed_and_the_peer_reads_it(run):
    async def main():
        listener, received, arrived = await collecting_server()
        comm = await connect(listener.address, role="client")
        # Not allowed yet: the thread is told to go through the loop, and nothing is sent.
        assert await joined(in_thread(lambda: comm.write_now(Release(keys=["no"])))) is False
        comm.write_from_threads()
        assert await joined(in_thread(lambda: comm.write_now(Release(keys=["a"]),
                                                             Release(keys=["b"])))) is True
        await until(lambda: len(received) == 2, arrived, received)
        assert received == [Release(keys=["a"]), Release(keys=["b"])]
        comm.close()
        listener.close()
    run(main())


def test_thread_writes_and_loop_sends_arrive_in_the_order_they_were_made(run):
    async def main():
        listener, received, arrived = await collecting_server()
        comm = await connect(listener.address, role="client")
        comm.write_from_threads()
        loop = asyncio.get_running_loop()
        # As a client does it: one outbox under one lock; a thread writes the whole outbox
        # when the comm lets it, else the loop sends it (and what the loop sends itself
        # goes out under the same lock).
        outbox: list = []
        lock = threading.Lock()
        direct = []
        decided: list[str] = []  # the order the messages were put in the outbox

        def drain():
            with lock:
                messages, outbox[:] = list(outbox), []
                if messages:
                    comm.send(*messages)

        def from_thread():
            for i in range(300):
                with lock:
                    outbox.append(Release(keys=[f"t{i}"]))
                    decided.append(f"t{i}")
                    if comm.write_now(*outbox):
                        outbox.clear()
                        direct.append(i)
                    else:
                        loop.call_soon_threadsafe(drain)

        pending = in_thread(from_thread)
        for i in range(300):
            with lock:
                outbox.append(Release(keys=[f"l{i}"]))
                decided.append(f"l{i}")
            drain()
            await asyncio.sleep(0)
        await joined(pending)
        await until(lambda: len(received) == 600, arrived, received)
        assert [msg.keys[0] for msg in received] == decided
        assert direct  # (some went straight from the thread)
        comm.close()
        listener.close()
    run(main())


def test_what_the_socket_does_not_take_at_once_is_written_by_the_loop_in_order(run):
    async def main():
        listener, received, arrived = await collecting_server()
        comm = await connect(listener.address, role="client")
        comm.write_from_threads()
        blob = os.urandom(20 * 2**20)  # more than a socket buffer takes at once

        def write():
            assert comm.write_now(PutData(id=1, data={"big": Payload("bytes", [blob])}))
            # The loop still holds the rest of the first message: this one must wait for it.
            return comm.write_now(Release(keys=["after"]))

        assert await joined(in_thread(write)) is False
        comm.send(Release(keys=["after"]))
        await until(lambda: len(received) == 2, arrived, received)
        assert bytes(received[0].data["big"].frames[0]) == blob
        assert received[1] == Release(keys=["after"])
        comm.close()
        listener.close()
    run(main())


def test_a_batch_with_two_large_frames_behind_a_threads_unfinished_write_keeps_the_stream(run):
    async def main():
        listener, received, arrived = await collecting_server()
        comm = await connect(listener.address, role="client")
        comm.write_from_threads()
        blob = os.urandom(20 * 2**20)  # more than a socket buffer takes at once
        pair = [os.urandom(2**17), os.urandom(2**17)]  # two large frames in a row
        assert await joined(in_thread(
            lambda: comm.write_now(PutData(id=1, data={"big": Payload("bytes", [blob])}))))
        comm.send(PutData(id=2, data={"a": Payload("bytes", [pair[0]]),
                                      "b": Payload("bytes", [pair[1]])}))
        await until(lambda: len(received) == 2 or comm.closed.done(), arrived, received)
        assert bytes(received[0].data["big"].frames[0]) == blob
        assert [bytes(received[1].data[k].frames[0]) for k in "ab"] == pair
        comm.close()
        listener.close()
    run(main())


def test_a_closed_connection_or_one_in_memory_is_left_to_the_loop(run):
    async def main():
        listener, received, arrived = await collecting_server()
        comm = await connect(listener.address, role="client")
        comm.write_from_threads()
        comm.close()
        await comm.closed
        assert await joined(in_thread(lambda: comm.write_now(Release(keys=["x"])))) is False
        initiator, acceptor = await comm_pair()
        initiator.write_from_threads()  # no socket to write to: nothing changes
        assert await joined(in_thread(lambda: initiator.write_now(Release(keys=["y"])))) \
            is False
        initiator.close()
        acceptor.close()
        listener.close()
    run(main())


def test_an_abort_queues_its_error_under_the_lock_threads_write_under(run):
    """A thread's message is on the wire whole before the error, or refused: never dropped
    from the queue by the error, nor written behind it."""
    async def main():
        accepted = []
        received: list = []

        def on_comm(comm):
            accepted.append(comm)
            comm.set_handler(received.extend)
        listener = await listen("127.0.0.1:0", on_comm)
        comm = await connect(listener.address, role="client")
        comm.write_from_threads()
        locked_when_queued = []
        send_error = comm.connection.send_error

        def watched(error):
            locked_when_queued.append(comm.thread_writes.lock.locked())
            send_error(error)
        comm.connection.send_error = watched
        assert await joined(in_thread(lambda: comm.write_now(Release(keys=["before"])))) is True
        comm.abort(InvalidMessage("enough"))
        assert locked_when_queued == [True]
        assert await joined(in_thread(lambda: comm.write_now(Release(keys=["after"])))) is False
        with pytest.raises(CommClosedError):
            comm.send(Release(keys=["after"]))
        [server_side] = accepted
        await server_side.closed
        assert server_side.peer_error is not None
        assert server_side.peer_error.code == "invalid-message"
        assert received == [Release(keys=["before"])]
        listener.close()
    run(main())


def test_a_thread_may_write_what_the_loop_queued_first_while_the_loop_is_held_up(run):
    async def main():
        listener, received, arrived = await collecting_server()
        comm = await connect(listener.address, role="client")
        comm.write_from_threads()
        comm.send(Release(keys=["queued"]))  # its flush waits for the loop's next pass
        # The loop's thread is held up (joining the thread, as a long task would hold it):
        # without ``queued_first`` the thread is refused; with it, it writes both, in order.
        outcomes = []

        def write(queued_first: bool) -> None:
            outcomes.append(comm.write_now(Release(keys=[f"now-{queued_first}"]),
                                           queued_first=queued_first))
        for queued_first in (False, True):
            thread = threading.Thread(target=write, args=(queued_first,))
            thread.start()
            thread.join()
        assert outcomes == [False, True]
        await until(lambda: len(received) == 2, arrived, received)
        assert received == [Release(keys=["queued"]), Release(keys=["now-True"])]
        comm.send(Release(keys=["later"]))  # the loop's flush goes on as before
        await until(lambda: len(received) == 3, arrived, received)
        assert received[2] == Release(keys=["later"])
        comm.close()
        listener.close()
    run(main())
