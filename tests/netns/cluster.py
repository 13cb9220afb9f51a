"""A dist cluster spread over the hosts of a ``Network``, through the real command lines.

The center, each worker and the client run on hosts of their own; servers are started with
``dcenter``/``dworker`` and print the addresses the tests read. The client side is
``cluster_client.py``, run with ``ip netns exec`` inside the client's host; it prints one
``RESULT {json}`` line per phase, which the tests assert on.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .network import Host, Network
from .processes import HostProcess, ProcessExited

CENTER_PORT = 8786
CLIENT_SCRIPT = Path(__file__).with_name("cluster_client.py")
START_TIMEOUT = 30  # seconds for a server to print its address and register


def command(name: str, module: str) -> list[str]:
    """The console script installed beside this interpreter (``sudo`` may drop the venv from
    PATH), else the one on PATH, else the module it runs."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return [str(beside)]
    if found := shutil.which(name):
        return [found]
    return [sys.executable, "-m", module]


def environment(token: str | None) -> dict[str, str]:
    """This process's environment without the developer's own ``DIST_*`` settings, plus the
    cluster's token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIST_")}
    env["PYTHONUNBUFFERED"] = "1"
    if token:
        env["DIST_TOKEN"] = token
    return env


@dataclass
class WorkerServer:
    name: str
    host: Host
    process: HostProcess
    address: str  # as the worker printed it

    def registrations(self) -> int:
        return sum("re-registered with the center" in line for line in self.process.lines)


@dataclass
class Cluster:
    network: Network
    token: str
    center_host: Host
    center: HostProcess
    address: str
    client_host: Host
    workers: dict[str, WorkerServer] = field(default_factory=dict)

    def add_worker(self, name: str, *args: str, host: Host | None = None,
                   nthreads: int = 2) -> WorkerServer:
        host = host or self.network.add_host(name)
        process = host.start([*command("dworker", "dist_worker.cli"), self.address,
                              "--name", name, "--nthreads", str(nthreads),
                              "--log-level", "info", *args],
                             env=environment(self.token), label=f"dworker {name}")
        started = process.wait_for(r"Start worker at (\S+)", timeout=START_TIMEOUT)
        process.wait_for(rf"Registered with center at: {re.escape(self.address)}$",
                         timeout=START_TIMEOUT)
        worker = WorkerServer(name, host, process, started.group(1))
        self.workers[name] = worker
        return worker

    def config(self, **extra) -> dict:
        """What the client script is told: the center and each worker's name and address."""
        return {"center": self.address,
                "workers": {name: w.address for name, w in self.workers.items()},
                "hosts": {name: w.host.address for name, w in self.workers.items()},
                **extra}

    def run_client(self, scenario: str, *, timeout: float, **extra) -> dict:
        """Runs a client scenario to its end and returns what it printed as its result."""
        result = self.client_host.run(
            [sys.executable, str(CLIENT_SCRIPT), scenario, json.dumps(self.config(**extra))],
            env=environment(self.token), timeout=timeout, check=False)
        results = parse_results(result.stdout)
        assert result.returncode == 0 and results, (
            f"client {scenario} exited with {result.returncode}:\n{result.stdout}\n"
            f"{result.stderr}")
        return results[-1]

    def start_client(self, scenario: str, **extra) -> HostProcess:
        """Starts a client scenario that talks back: it prints progress and results and reads
        commands from stdin (``HostProcess.send``)."""
        return self.client_host.start(
            [sys.executable, str(CLIENT_SCRIPT), scenario, json.dumps(self.config(**extra))],
            env=environment(self.token), label=f"client {scenario}", stdin=True)

    def removals(self) -> list[str]:
        """The center's notices of workers it dropped for silence."""
        return [line for line in self.center.lines if "removing it" in line]


def parse_results(output: str) -> list[dict]:
    return [json.loads(line[len("RESULT "):]) for line in output.splitlines()
            if line.startswith("RESULT ")]


def wait_for_result(process: HostProcess, number: int, timeout: float) -> dict:
    """The client's ``number``-th result (1 for the first), once it has printed it."""
    deadline = time.monotonic() + timeout
    while True:
        results = parse_results(process.output())
        if len(results) >= number:
            return results[number - 1]
        if not process.running():
            raise ProcessExited(f"{process.label} exited with {process.popen.returncode} "
                                f"after {len(results)} results:\n{process.output()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.label} printed no result {number} within {timeout} s"
                               f":\n{process.output()}")
        time.sleep(0.1)


def start_cluster(network: Network, *, workers: tuple[str, ...] = ("worker-b", "worker-c"),
                  center_args: tuple[str, ...] = (), worker_args: tuple[str, ...] = (),
                  delays: dict[str, float] | None = None, heartbeat_timeout: float = 5,
                  center_host: str = "center", nthreads: int = 2,
                  token: str | None = None) -> Cluster:
    """The center on its host (the network's first, 198.18.0.1), each worker on its own
    host, and a host for the client (last). ``delays`` gives hosts a latency in ms."""
    delays = delays or {}
    token = token or secrets.token_hex(16)
    host = network.add_host(center_host)
    center = host.start([*command("dcenter", "dist_center.cli"), "--host", host.address,
                         "--port", str(CENTER_PORT), "--no-dashboard", "--log-level", "info",
                         "--heartbeat-timeout", str(heartbeat_timeout), *center_args],
                        env=environment(token), label="dcenter")
    address = center.wait_for(r"Start center at (\S+)", timeout=START_TIMEOUT).group(1)
    hosts = [network.add_host(name, delay_ms=delays.get(name, 0)) for name in workers]
    client_host = network.add_host("client", delay_ms=delays.get("client", 0))
    cluster = Cluster(network, token, host, center, address, client_host)
    for name, worker_host in zip(workers, hosts):
        cluster.add_worker(name, *worker_args, host=worker_host, nthreads=nthreads)
    return cluster
