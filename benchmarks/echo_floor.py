"""The floor of a task's round trip: the same two hops with no framework in them.

A dist round trip is client -> center -> worker -> center -> client: three processes, four
one-way messages, each woken in turn. Here the same shape carries 16 bytes and nothing else:
a relay process (standing for the center) forwards what the client sends to an echo process
(the worker) and the echo back, both on uvloop (asyncio's loop when uvloop is absent), over
loopback TCP with Nagle off. The client is timed three ways:

- ``blocking``: the calling thread writes to and reads from its socket itself (the floor);
- ``loop``: a coroutine on a uvloop loop in the calling thread (an asyncio client);
- ``thread``: the client's socket belongs to an event loop on a thread of its own, and the
  calling thread hands each request over with ``call_soon_threadsafe`` and waits on a
  ``threading.Event`` the loop sets (the shape of a client with an I/O thread).

    python benchmarks/echo_floor.py [--n 2000] [--runs 5]

Prints each run's median round trip and the median over runs, in microseconds; ``--json``
writes every sample.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

MESSAGE = struct.Struct("!Q8x")  # a counter and padding: 16 bytes


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Forward(asyncio.Protocol):
    """Everything received on one connection is written to ``peer``'s transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Forward | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.peer.transport is not None
        self.peer.transport.write(data)


class Echo(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def serve_echo(port_file: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    announce(port_file, server.sockets[0].getsockname()[1])
    await server.serve_forever()


async def serve_relay(port_file: str, echo_port: int) -> None:
    """Accepts one client; its bytes go to the echo process and the echo's back to it."""
    loop = asyncio.get_running_loop()
    downstream = Forward()
    await loop.create_connection(lambda: downstream, "127.0.0.1", echo_port)
    done = loop.create_future()

    class Upstream(Forward):
        def connection_lost(self, exc) -> None:
            if not done.done():
                done.set_result(None)

    def accept() -> Forward:
        upstream = Upstream()
        upstream.peer, downstream.peer = downstream, upstream
        return upstream

    server = await loop.create_server(accept, "127.0.0.1", 0)
    announce(port_file, server.sockets[0].getsockname()[1])
    await done


def announce(port_file: str, port: int) -> None:
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)


def wait_for_port(port_file: str, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with open(port_file) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            time.sleep(0.01)
    raise TimeoutError("no port announced")


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise ConnectionError("the relay went away")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def time_blocking(port: int, n: int) -> list[float]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for i in range(n):
            start = time.perf_counter()
            sock.sendall(MESSAGE.pack(i))
            assert MESSAGE.unpack(recv_exactly(sock, MESSAGE.size))[0] == i
            samples.append(time.perf_counter() - start)
        return samples


class Replies(asyncio.Protocol):
    """The client's side on an event loop: each complete reply settles ``on_reply``."""

    def __init__(self, on_reply) -> None:
        self.buffer = b""
        self.on_reply = on_reply

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= MESSAGE.size:
            reply, self.buffer = self.buffer[:MESSAGE.size], self.buffer[MESSAGE.size:]
            self.on_reply(MESSAGE.unpack(reply)[0])


def time_loop(port: int, n: int) -> list[float]:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        waiter: list[asyncio.Future] = []
        transport, _ = await loop.create_connection(
            lambda: Replies(lambda i: waiter[0].set_result(i)), "127.0.0.1", port)
        samples = []
        for i in range(n):
            start = time.perf_counter()
            waiter[:] = [loop.create_future()]
            transport.write(MESSAGE.pack(i))
            assert await waiter[0] == i
            samples.append(time.perf_counter() - start)
        transport.close()
        return samples

    loop = new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def time_thread(port: int, n: int) -> list[float]:
    loop = new_loop()
    arrived = threading.Event()
    connected: list[asyncio.Transport] = []
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def connect() -> None:
        transport, _ = await loop.create_connection(lambda: Replies(lambda i: arrived.set()),
                                                    "127.0.0.1", port)
        connected.append(transport)

    asyncio.run_coroutine_threadsafe(connect(), loop).result(30)
    transport = connected[0]
    samples = []
    for i in range(n):
        start = time.perf_counter()
        arrived.clear()
        loop.call_soon_threadsafe(transport.write, MESSAGE.pack(i))
        arrived.wait()
        samples.append(time.perf_counter() - start)
    loop.call_soon_threadsafe(transport.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    return samples


CLIENTS = {"blocking": time_blocking, "loop": time_loop, "thread": time_thread}


def one_run(n: int, tmp: str) -> dict[str, float]:
    procs = []
    try:
        echo_file, relay_file = f"{tmp}.echo", f"{tmp}.relay"
        procs.append(subprocess.Popen([sys.executable, __file__, "--echo", echo_file]))
        echo_port = wait_for_port(echo_file, procs[-1])
        results = {}
        for name, client in CLIENTS.items():
            procs.append(subprocess.Popen([sys.executable, __file__, "--relay", relay_file,
                                           "--echo-port", str(echo_port)]))
            relay_port = wait_for_port(relay_file, procs[-1])
            os.unlink(relay_file)
            client(relay_port, n // 10)  # warm-up
            procs[-1].wait(10)
            procs.pop()
            procs.append(subprocess.Popen([sys.executable, __file__, "--relay", relay_file,
                                           "--echo-port", str(echo_port)]))
            relay_port = wait_for_port(relay_file, procs[-1])
            os.unlink(relay_file)
            results[name] = statistics.median(client(relay_port, n)) * 1e6
            procs[-1].wait(10)
            procs.pop()
        return results
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        for suffix in (".echo", ".relay"):
            try:
                os.unlink(tmp + suffix)
            except FileNotFoundError:
                pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="round trips per client and run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", help="write every run here")
    parser.add_argument("--echo", help=argparse.SUPPRESS)
    parser.add_argument("--relay", help=argparse.SUPPRESS)
    parser.add_argument("--echo-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo:
        new_loop().run_until_complete(serve_echo(args.echo))
        return 0
    if args.relay:
        new_loop().run_until_complete(serve_relay(args.relay, args.echo_port))
        return 0
    import tempfile
    tmp = os.path.join(tempfile.mkdtemp(prefix="echo-floor-"), "port")
    runs = []
    for _ in range(args.runs):
        run = one_run(args.n, tmp)
        runs.append(run)
        print({name: round(us) for name, us in run.items()},
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    medians = {name: round(statistics.median(r[name] for r in runs)) for name in CLIENTS}
    print(f"median of {len(runs)} runs (µs per round trip, two hops):", medians)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": medians}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
