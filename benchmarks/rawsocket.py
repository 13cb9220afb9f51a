"""The loopback floor: plain blocking sockets between two processes, no framework.

Transfer: the sender writes ``nbytes`` from one buffer with ``sendall``; the receiver
``recv_into``s a buffer and answers one byte. Two receiver variants: fresh memory per message
(what a worker receiving a new array must at least do: its pages get faulted in) and one
buffer reused across messages (the pure socket floor). Round trip: 8 bytes there and back.

    python rawsocket.py --nbytes 200000000 --reps 5      # prints one @@RESULT json line
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import subprocess
import sys
import time

HEADER = struct.Struct("!QB")  # payload length, receiver mode
FRESH, REUSE, ECHO, STOP = 0, 1, 2, 3


def recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if not n:
            raise ConnectionError("sender went away")
        got += n


def fresh_buffer(length: int):
    """New memory the way a worker gets it for an arriving array: ``numpy.empty`` (malloc,
    uninitialised). Not ``bytearray(n)``, which zeroes every page first, nor a raw mmap, which
    faults every page in afresh where a long-lived process's allocator would reuse memory."""
    try:
        import numpy
    except ImportError:
        return bytearray(length)
    return numpy.empty(length, dtype=numpy.uint8)


def receive(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        header = bytearray(HEADER.size)
        reused = bytearray()
        while True:
            recv_exactly(sock, memoryview(header))
            length, mode = HEADER.unpack(header)
            if mode == STOP:
                return
            if mode == FRESH:
                buf = fresh_buffer(length)
            else:
                if len(reused) != length:
                    reused = bytearray(length)
                buf = reused
            view = memoryview(buf).cast("B")[:length]
            recv_exactly(sock, view)
            sock.sendall(bytes(view[:8]) if mode == ECHO else b"k")
            view.release()
            del buf


class RawPair:
    """This process and a receiver process joined by one loopback TCP connection.

    The driver also uses it to interleave raw transfers with a system's worker-to-worker
    moves, so both see the same load on the machine."""

    def __init__(self, nbytes: int):
        self.nbytes = nbytes
        self.payload = memoryview(bytearray(b"\x01") * nbytes)
        self.ack = bytearray(8)
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            port = server.getsockname()[1]
            self.peer = subprocess.Popen([sys.executable, __file__, "--receive", str(port)])
            server.settimeout(30)
            self.conn, _ = server.accept()
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def transfer(self, mode: int = FRESH) -> float:
        """One move of ``nbytes``, in MB/s, timed until the receiver has all of it."""
        start = time.perf_counter()
        self.conn.sendall(HEADER.pack(self.nbytes, mode))
        self.conn.sendall(self.payload)
        recv_exactly(self.conn, memoryview(self.ack)[:1])
        return self.nbytes / 1e6 / (time.perf_counter() - start)

    def round_trip(self) -> float:
        start = time.perf_counter()
        self.conn.sendall(HEADER.pack(8, ECHO) + b"\x00" * 8)
        recv_exactly(self.conn, memoryview(self.ack))
        return time.perf_counter() - start

    def close(self) -> None:
        try:
            self.conn.sendall(HEADER.pack(0, STOP))
        finally:
            self.conn.close()
            self.peer.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send(nbytes: int, reps: int, round_trips: int) -> dict:
    with RawPair(nbytes) as pair:
        rates = {}
        for mode, name in ((FRESH, "fresh_buffer"), (REUSE, "reused_buffer")):
            pair.transfer(mode)  # warm up the socket buffers and the allocator
            rates[name] = [pair.transfer(mode) for _ in range(reps)]
        times = [pair.round_trip() for _ in range(round_trips)]
    return {
        "nbytes": nbytes,
        "fresh_buffer_mb_s": statistics.median(rates["fresh_buffer"]),
        "reused_buffer_mb_s": statistics.median(rates["reused_buffer"]),
        "runs": rates,
        "round_trip_us": statistics.median(times) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nbytes", type=int, default=200_000_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--receive", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive(args.receive)
        return
    result = send(args.nbytes, args.reps, args.round_trips)
    print("@@RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
