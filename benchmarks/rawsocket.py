"""The loopback floor: plain blocking sockets between two processes, no framework.

Transfer: the sender writes ``nbytes`` from one buffer with ``sendall``; the receiver
``recv_into``s a buffer and answers one byte. Two receiver variants: a fresh ``bytearray`` per
message (what a worker receiving a new array must at least do -- the pages get faulted in) and
one buffer reused across messages (the pure socket floor). Round trip: 8 bytes there and back.

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
                buf = bytearray(length)
            else:
                if len(reused) != length:
                    reused = bytearray(length)
                buf = reused
            recv_exactly(sock, memoryview(buf))
            sock.sendall(bytes(buf[:8]) if mode == ECHO else b"k")
            del buf


def send(nbytes: int, reps: int, round_trips: int) -> dict:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        peer = subprocess.Popen([sys.executable, __file__, "--receive", str(port)])
        try:
            conn, _ = server.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return measure(conn, nbytes, reps, round_trips)
        finally:
            peer.wait(timeout=30)


def measure(conn: socket.socket, nbytes: int, reps: int, round_trips: int) -> dict:
    payload = memoryview(bytearray(b"\x01") * nbytes)
    ack = bytearray(8)

    def transfer(mode: int) -> float:
        start = time.perf_counter()
        conn.sendall(HEADER.pack(nbytes, mode))
        conn.sendall(payload)
        recv_exactly(conn, memoryview(ack)[:1])
        return nbytes / 1e6 / (time.perf_counter() - start)

    rates = {}
    for mode, name in ((FRESH, "fresh_buffer"), (REUSE, "reused_buffer")):
        transfer(mode)  # warm up the socket buffers and the allocator
        rates[name] = [transfer(mode) for _ in range(reps)]

    small = b"\x00" * 8
    times = []
    for _ in range(round_trips):
        start = time.perf_counter()
        conn.sendall(HEADER.pack(8, ECHO) + small)
        recv_exactly(conn, memoryview(ack))
        times.append(time.perf_counter() - start)
    conn.sendall(HEADER.pack(0, STOP))
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
