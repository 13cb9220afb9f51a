"""The test bed itself, with plain processes: hosts reach each other over the bridge, links cut
and come back, latency and bandwidth caps hold, and nothing outlives a test."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from . import network as network_module
from .network import Network, namespace_pids, namespaces, remove_leftovers

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

# A TCP echo server: prints its port, then echoes each connection's bytes back.
ECHO_SERVER = """
import socket, sys, threading
server = socket.create_server((sys.argv[1], 0))
print(server.getsockname()[1], flush=True)
def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
while True:
    threading.Thread(target=echo, args=(server.accept()[0],), daemon=True).start()
"""

# Connects, then times `rounds` one-byte round trips; prints the median in ms.
ROUND_TRIP = """
import socket, statistics, sys, time
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    conn.sendall(b"x")
    conn.recv(1)
    times.append((time.perf_counter() - start) * 1000)
print(statistics.median(times))
"""

# Sends argv[3] bytes to the echo server and reads them back; prints the seconds it took.
TRANSFER = """
import socket, sys, threading, time
size = int(sys.argv[3])
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
start = time.perf_counter()
threading.Thread(target=conn.sendall, args=(b"x" * size,), daemon=True).start()
received = 0
while received < size:
    received += len(conn.recv(1 << 20))
print(time.perf_counter() - start)
"""


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def skip_unless_latency_works(use_netem: bool) -> None:
    if use_netem and not network_module.netem_available():
        pytest.skip("the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); the delay line "
                    "stands in for it")
    if reason := network_module.latency_unsupported_reason(use_netem):
        pytest.skip(reason)


def start_echo(host) -> int:
    server = host.start(python(ECHO_SERVER, host.address), label=f"echo on {host.name}")
    return int(server.wait_for(r"^\d+$", timeout=10).group(0))


def test_hosts_reach_each_other_over_http_and_loopback_is_up(network, tmp_path):
    a, b = network.add_host("a"), network.add_host("b")
    assert (a.address, b.address) == ("198.18.0.1", "198.18.0.2")
    (tmp_path / "hello.txt").write_text("across the bridge")
    server = a.start([sys.executable, "-m", "http.server", "8000", "--bind", a.address,
                      "--directory", str(tmp_path)], label="http.server")
    fetch = ("import sys, urllib.request\n"
             "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
    url = f"http://{a.address}:8000/hello.txt"
    deadline = time.monotonic() + 10
    while True:
        result = b.run(python(fetch, url), check=False, timeout=20)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # http.server prints nothing on start, so poll until it listens
    assert result.stdout.strip() == "across the bridge", result.stderr
    assert server.running()
    # Each host has its own loopback, up.
    loopback = ("import socket; s = socket.create_server(('127.0.0.1', 0)); "
                "c = socket.create_connection(s.getsockname()); print('ok')")
    assert a.run(python(loopback)).stdout.strip() == "ok"


def test_cut_link_stops_traffic_both_ways_and_restore_brings_it_back(network):
    a, b = network.add_host("a"), network.add_host("b")
    port = start_echo(a)
    connect = ("import socket, sys\n"
               "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)")
    assert b.run(python(connect, a.address, str(port)), check=False).returncode == 0
    with a.link_cut():
        assert b.run(python(connect, a.address, str(port)), check=False).returncode != 0
        reverse = b.start(python(ECHO_SERVER, b.address), label="echo on b")
        reverse_port = reverse.wait_for(r"^\d+$", timeout=10).group(0)
        assert a.run(python(connect, b.address, reverse_port), check=False).returncode != 0
    assert b.run(python(connect, a.address, str(port)), check=False).returncode == 0


def test_established_connection_survives_a_short_cut(network):
    a, b = network.add_host("a"), network.add_host("b")
    port = start_echo(a)
    client = b.start(python(
        "import socket, sys\n"
        "conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)\n"
        "for line in sys.stdin:\n"
        "    conn.sendall(line.encode()); print('echo', conn.recv(100).decode().strip(),"
        " flush=True)\n", a.address, str(port)), label="echo client", stdin=True)
    client.send("before")
    client.wait_for("echo before", timeout=10)
    a.cut_link()
    client.send("during")
    time.sleep(2)
    assert not any("during" in line for line in client.lines)
    a.restore_link()
    client.wait_for("echo during", timeout=20)  # TCP retransmits once the link is back


@pytest.mark.parametrize("use_netem", [True, False], ids=["netem", "delay-line"])
def test_latency_on_one_host(use_netem):
    skip_unless_latency_works(use_netem)
    with Network(uses_netem=use_netem) as net:
        a, fast, slow = net.add_host("a"), net.add_host("fast"), net.add_host("slow", delay_ms=50)
        port = str(start_echo(a))
        fast_ms = float(fast.run(python(ROUND_TRIP, a.address, port, "20")).stdout)
        slow_ms = float(slow.run(python(ROUND_TRIP, a.address, port, "20")).stdout)
    assert fast_ms < 20
    assert 50 <= slow_ms < 90


@pytest.mark.parametrize("use_netem", [True, False], ids=["netem", "delay-line"])
def test_bandwidth_cap_both_ways(use_netem):
    skip_unless_latency_works(use_netem)
    with Network(uses_netem=use_netem) as net:
        a, fast, slow = net.add_host("a"), net.add_host("fast"), net.add_host("slow", delay_ms=20)
        slow.limit_bandwidth("8mbit")
        port = str(start_echo(a))
        size = str(2_000_000)  # 2 MB each way: 2 s at 8 Mbit/s
        fast_s = float(fast.run(python(TRANSFER, a.address, port, size)).stdout)
        slow_s = float(slow.run(python(TRANSFER, a.address, port, size), timeout=60).stdout)
        counters = slow.link_counters()
    assert fast_s < 1
    assert 1.6 < slow_s < 8
    assert counters["tx_bytes"] > 2_000_000 and counters["rx_bytes"] > 2_000_000


def test_close_ends_every_process_and_namespace():
    with Network() as net:
        a, b = net.add_host("a"), net.add_host("b", delay_ms=10)
        stubborn = a.start(python("import signal, time\nsignal.signal(signal.SIGTERM, "
                                  "signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(600)"),
                           label="ignores SIGTERM")
        stubborn.wait_for("up", timeout=10)
        # A process that leaves its group: only its namespace still knows it.
        escaped = b.run(python("import subprocess, sys\n"
                               "quiet = subprocess.DEVNULL\n"
                               "p = subprocess.Popen(['sleep', '600'], start_new_session=True,\n"
                               "                     stdout=quiet, stderr=quiet)\n"
                               "print(p.pid)")).stdout
        escaped_pid = int(escaped)
        created = [h.namespace for h in net.hosts.values()] + [net.switch]
        pids = [pid for ns in created for pid in namespace_pids(ns)]
        assert stubborn.pid in pids and escaped_pid in pids
    remaining = set(namespaces())
    assert not remaining & set(created)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), pid


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_leftovers_of_a_crashed_run_are_removed():
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid stands for a pytest run that died without cleaning up
    leftover = f"{network_module.PREFIX}-{gone.pid}-1-center"
    network_module.ip("netns", "add", leftover)
    sleeper = subprocess.Popen(["ip", "netns", "exec", leftover, "sleep", "600"],
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while sleeper.pid not in namespace_pids(leftover) and time.monotonic() < deadline:
            time.sleep(0.05)
        mine = Network()  # this run's namespaces (pid alive) must survive
        try:
            removed = remove_leftovers()
            assert leftover in removed
            assert mine.switch not in removed and mine.switch in namespaces()
        finally:
            mine.close()
        assert sleeper.wait(5) == -signal.SIGTERM
        assert leftover not in namespaces()
    finally:
        if sleeper.poll() is None:
            os.killpg(sleeper.pid, signal.SIGKILL)
        network_module.ip("netns", "delete", leftover, check=False)


def test_skip_reasons(monkeypatch):
    monkeypatch.setattr(network_module.shutil, "which", lambda name: None)
    assert "iproute2" in network_module.unsupported_reason()
    monkeypatch.undo()
    monkeypatch.setattr(network_module.os, "geteuid", lambda: 1000)
    assert "need root" in network_module.unsupported_reason()
