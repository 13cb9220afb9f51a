"""Idle and slow connections cannot starve a real cluster.

Hundreds of sockets that connect and say nothing, and others that dribble a valid hello one byte
at a time, cost the servers a few KiB each and are closed when the handshake timeout passes;
meanwhile new clients connect and compute as usual. The servers also raise their own limit on
open files, so such sockets do not use up the descriptors real clients need.
"""
from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time

import psutil
import pytest
from dist_client import Executor
from dist_protocol.framing import frames_to_bytes
from dist_protocol.messages import Hello, encode_batch

pytestmark = pytest.mark.timeout(180)

TOKEN = "slow and steady does not get in"
TOKEN_ENV = {"DIST_TOKEN": TOKEN}
HANDSHAKE_TIMEOUT = 4.0
IDLE_PER_SERVER = 500
SLOW_PER_SERVER = 50
# The servers start with a limit on open files below the sockets each gets: they must raise it.
INHERITED_FILE_LIMIT = 256


def inc(x):
    return x + 1


@contextlib.contextmanager
def open_file_limit(soft: int):
    """This process's soft limit on open files (children started meanwhile inherit it)."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft > hard:
        pytest.skip(f"needs {soft} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def open_sockets(address: str, n: int) -> list[socket.socket]:
    return [socket.create_connection(host_port(address), timeout=30) for _ in range(n)]


class SlowSender(threading.Thread):
    """Sends each socket a valid hello, one byte per socket per ``interval``."""

    def __init__(self, sockets: list[socket.socket], interval: float = 0.5):
        super().__init__(daemon=True)
        self.sockets = sockets
        self.interval = interval
        self.message = frames_to_bytes(encode_batch([Hello(
            min_version=1, max_version=1, role="client", name="slow", nonce=b"\1" * 32)]))
        self.bytes_sent = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        position = 0
        while not self.stopped.is_set() and position < len(self.message):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(self.message[position:position + 1])
                    self.bytes_sent += 1
            position += 1
            self.stopped.wait(self.interval)


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass  # the error message before the close
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def time_a_new_client(address: str) -> float:
    """Seconds for a new client to connect, compute on a worker and fetch the result."""
    started = time.perf_counter()
    with Executor(address, token=TOKEN, timeout=30) as e:
        assert e.submit(inc, int(started * 1000)).result(timeout=30) == int(started * 1000) + 1
    return time.perf_counter() - started


def test_idle_and_slow_sockets_do_not_stop_other_clients(make_cluster):
    server_args = ("--handshake-timeout", str(HANDSHAKE_TIMEOUT))
    # room for the files this process has open (after a long run, more than a few)
    inherited = max(INHERITED_FILE_LIMIT, psutil.Process().num_fds() + 64)
    assert inherited < IDLE_PER_SERVER + SLOW_PER_SERVER
    with open_file_limit(inherited):
        cluster = make_cluster(n_workers=1, nthreads=1, env=TOKEN_ENV, center_args=server_args,
                               worker_args=server_args)
    servers = {"center": cluster.address, "worker": cluster.workers[0].address}
    processes = {"center": psutil.Process(cluster.center.pid),
                 "worker": psutil.Process(cluster.workers[0].pid)}
    for process in processes.values():
        soft, hard = process.rlimit(psutil.RLIMIT_NOFILE)
        assert soft == hard or soft >= 2**16, "the server did not raise its open-file limit"
    baseline = min(time_a_new_client(cluster.address) for _ in range(3))
    memory_before = {name: p.memory_info().rss for name, p in processes.items()}

    needed = 2 * (IDLE_PER_SERVER + SLOW_PER_SERVER) + 200
    with open_file_limit(max(needed, resource.getrlimit(resource.RLIMIT_NOFILE)[0])):
        idle = {name: open_sockets(address, IDLE_PER_SERVER) for name, address in servers.items()}
        slow = {name: open_sockets(address, SLOW_PER_SERVER) for name, address in servers.items()}
        opened = time.monotonic()
        sender = SlowSender([s for group in slow.values() for s in group])
        sender.start()
        try:
            time.sleep(0.5)  # the servers have accepted them all
            memory_during = {name: p.memory_info().rss for name, p in processes.items()}
            under_attack = [time_a_new_client(cluster.address) for _ in range(3)]
            assert max(under_attack) < max(5.0, 20 * baseline), (baseline, under_attack)
            assert sender.bytes_sent > 0

            # the handshake timeout closes all of them, the slow ones too
            everyone = [s for groups in (idle, slow) for group in groups.values() for s in group]
            deadline = opened + HANDSHAKE_TIMEOUT + 15
            still_open = [s for s in everyone
                          if not closed_by_server(s, max(0.01, deadline - time.monotonic()))]
            closed_after = time.monotonic() - opened
            assert still_open == [], f"{len(still_open)} sockets left open after {closed_after} s"
        finally:
            sender.stopped.set()
            sender.join(10)
            for group in (*idle.values(), *slow.values()):
                for sock in group:
                    sock.close()

    assert time_a_new_client(cluster.address) < max(5.0, 20 * baseline)
    timeouts = cluster.center.output().count("(handshake-timeout)")
    assert timeouts == IDLE_PER_SERVER + SLOW_PER_SERVER, cluster.center.output()[-2000:]
    growth = {name: (memory_during[name] - memory_before[name]) / 2**20 for name in servers}
    print(f"\nnew client, connect + compute + gather: {baseline * 1000:.0f} ms idle, "
          f"{max(under_attack) * 1000:.0f} ms (worst of 3) with {IDLE_PER_SERVER} idle and "
          f"{SLOW_PER_SERVER} slow sockets on each server; all closed {closed_after:.1f} s after "
          f"opening; memory growth: "
          + ", ".join(f"{name} {mib:.1f} MiB" for name, mib in growth.items()))
    per_socket = max(growth.values()) * 2**20 / (IDLE_PER_SERVER + SLOW_PER_SERVER)
    assert per_socket < 64 * 1024, f"{per_socket:.0f} bytes per unauthenticated socket"
