"""dist across hosts: the center, each worker and the client on a host of its own.

On 127.0.0.1 a worker that advertises the wrong address, or a client that cannot reach a
worker, still works by accident; here each one only reaches the others over the bridge. Link
counters show that data goes worker to worker and worker to client directly, never through
the center.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .cluster import CENTER_PORT, command, environment, start_cluster

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

MB = 1_000_000

# A TCP port forwarder: LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT; names each client.
FORWARDER = """
import socket, sys, threading
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
target = (sys.argv[3], int(sys.argv[4]))
print("forwarding", flush=True)
def pump(src, dst):
    while data := src.recv(1 << 16):
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)
while True:
    conn, peer = server.accept()
    print("connection from", peer[0], flush=True)
    upstream = socket.create_connection(target)
    for a, b in ((conn, upstream), (upstream, conn)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
"""
# What the center may see of a run that moves tens of MB between others: its messages only.
CENTER_TRAFFIC_LIMIT = 1 * MB


def center_traffic(cluster, before: dict) -> int:
    after = cluster.center_host.link_counters()
    return (after["rx_bytes"] - before["rx_bytes"]) + (after["tx_bytes"] - before["tx_bytes"])


def test_seed_walkthrough_across_hosts(network):
    cluster = start_cluster(network)
    assert cluster.address == f"198.18.0.1:{CENTER_PORT}"
    assert cluster.center.lines[0] == f"Start center at 198.18.0.1:{CENTER_PORT}"
    b, c = cluster.workers["worker-b"], cluster.workers["worker-c"]
    # Each worker advertises the address of its own host, the one the others reach it at.
    assert re.fullmatch(r"198\.18\.0\.2:\d+", b.address), b.address
    assert re.fullmatch(r"198\.18\.0\.3:\d+", c.address), c.address

    result = cluster.run_client("walkthrough", timeout=90)

    assert result["inc"] == 2
    assert re.fullmatch(r"inc-[0-9a-f]{32}", result["key"]) and result["same_key"]
    assert result["map"] == [1, 2, 3, 4, 5]
    assert result["chain"] == 4
    assert result["sum"] == 90
    assert result["scatter"] == [1, 2, 3]
    assert result["workers"] == sorted([b.address, c.address])
    assert result["ran_on"] == ["198.18.0.2", "198.18.0.3"]


@pytest.mark.parametrize("everywhere", ["0.0.0.0"])
def test_servers_bound_everywhere_advertise_a_reachable_address(network, everywhere):
    cluster = start_cluster(network, center_args=("--host", everywhere),
                            worker_args=("--host", everywhere))
    for worker in cluster.workers.values():
        assert worker.address.split(":")[0] == worker.host.address, worker.address
    result = cluster.run_client("walkthrough", timeout=90)
    assert result["sum"] == 90 and result["ran_on"] == ["198.18.0.2", "198.18.0.3"]


def test_center_bound_everywhere_prints_an_address_workers_can_use(network):
    host = network.add_host("center")
    center = host.start([*command("dcenter", "dist_center.cli"), "--host", "0.0.0.0",
                         "--port", str(CENTER_PORT), "--no-dashboard"],
                        env=environment("a-token"), label="dcenter")
    printed = center.wait_for(r"Start center at (\S+)", timeout=30).group(1)
    assert printed == f"{host.address}:{CENTER_PORT}"


def test_contact_address_is_what_peers_and_clients_use(network):
    """A worker reachable, as behind NAT, at an address of another machine that forwards to
    it: peers and clients must use its ``--contact-address``, and the forwarder sees them."""
    cluster = start_cluster(network, workers=("worker-b",))
    gateway = network.add_host("gateway")
    host = network.add_host("worker-c")
    forwarder = gateway.start([sys.executable, "-c", FORWARDER, gateway.address, "7300",
                               host.address, "7300"], label="forwarder")
    forwarder.wait_for("forwarding", timeout=10)
    c = cluster.add_worker("worker-c", "--host", "0.0.0.0", "--port", "7300",
                           "--contact-address", f"{gateway.address}:7300", host=host)
    assert c.address == f"{gateway.address}:7300"

    result = cluster.run_client("pinned", timeout=90, size=1 * MB, holder="worker-c",
                                runner="worker-b")

    assert result["held_by"] == [f"{gateway.address}:7300"]
    assert result["nbytes"] == 1 * MB and result["ran_on"] == "198.18.0.2"
    # The client scattered through the forwarder, and worker-b fetched through it.
    forwarded_for = {line.split()[-1] for line in forwarder.lines
                     if line.startswith("connection from")}
    assert {cluster.client_host.address, "198.18.0.2"} <= forwarded_for


def test_center_on_a_network_address_needs_a_token(network):
    host = network.add_host("center")
    refused = host.run([*command("dcenter", "dist_center.cli"), "--host", host.address,
                        "--no-dashboard"], env=environment(None), timeout=30, check=False)
    assert refused.returncode != 0
    assert "token" in (refused.stdout + refused.stderr).lower()


def test_task_pinned_to_one_worker_consumes_data_held_by_another(network):
    cluster = start_cluster(network)
    b, c = cluster.workers["worker-b"], cluster.workers["worker-c"]
    before = cluster.center_host.link_counters()
    c_before = c.host.link_counters()

    result = cluster.run_client("pinned", timeout=90, size=20 * MB, holder="worker-b",
                                runner="worker-c")

    assert result["held_by"] == [b.address]
    assert result["nbytes"] == 20 * MB
    assert result["ran_on"] == c.host.address
    assert b.address in result["held_by_after"]
    # The 20 MB went client -> worker-b -> worker-c; the center saw messages only.
    assert center_traffic(cluster, before) < CENTER_TRAFFIC_LIMIT
    assert c.host.link_counters()["rx_bytes"] - c_before["rx_bytes"] > 20 * MB


def test_gather_from_several_workers(network):
    cluster = start_cluster(network, workers=("worker-b", "worker-c", "worker-d"))
    client_before = cluster.client_host.link_counters()
    center_before = cluster.center_host.link_counters()
    sent_before = {name: w.host.link_counters()["tx_bytes"]
                   for name, w in cluster.workers.items()}

    result = cluster.run_client("gather_many", timeout=90, size=2 * MB, count=9)

    assert result["correct"] == [True] * 9
    assert result["holders"] == {w.address: 3 for w in cluster.workers.values()}
    for name, worker in cluster.workers.items():
        # Each worker sent its three blocks straight to the client.
        assert worker.host.link_counters()["tx_bytes"] - sent_before[name] > 6 * MB, name
    assert cluster.client_host.link_counters()["rx_bytes"] - client_before["rx_bytes"] > 18 * MB
    assert center_traffic(cluster, center_before) < CENTER_TRAFFIC_LIMIT


def test_a_worker_that_cannot_reach_the_center_says_so(network):
    """No center at the address: the worker keeps trying (it may start first) and says why,
    rather than hanging silently."""
    network.add_host("center")
    host = network.add_host("worker-b")
    worker = host.start([*command("dworker", "dist_worker.cli"), "198.18.0.1:8786",
                         "--no-nanny", "--log-level", "info"],
                        env=environment("a-token"), label="dworker without center")
    worker.wait_for(r"cannot reach the center at 198\.18\.0\.1:8786", timeout=30)
    assert worker.running()
    with pytest.raises(subprocess.TimeoutExpired):
        worker.popen.wait(1)
