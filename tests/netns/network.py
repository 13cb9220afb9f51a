"""Hosts as Linux network namespaces joined by a bridge, with links that can be cut and shaped.

A ``Network`` owns a *switch* namespace holding the bridge, and one namespace per host. Each host
gets ``eth0`` with an address from 198.18.0.0/15 (set aside for network testing, RFC 2544), so
tests never collide with real networks. The bridge lives in its own namespace rather than the
machine's, so deleting the namespaces removes every bridge, veth and tap with them and the
machine's own firewall (bridge netfilter, a FORWARD policy of DROP) cannot interfere.

Names carry a per-run prefix ``distnet-<pid>-<n>``: a run that crashed leaves namespaces whose
pid is dead, and ``remove_leftovers`` deletes those (with the processes inside) on the next run.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .processes import HostProcess, kill_pids, parent_death_signal

PREFIX = "distnet"
SUBNET = "198.18.0"  # hosts get SUBNET.1, SUBNET.2, ... /24 on one bridge
BRIDGE = "br0"
HOST_INTERFACE = "eth0"
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
DELAY_LINE_SCRIPT = Path(__file__).with_name("delay_line.py")


class NetworkError(RuntimeError):
    """A command that builds or changes the network failed."""


def ip(*args: str, check: bool = True, timeout: float = 15) -> subprocess.CompletedProcess:
    """Runs ``ip ARGS`` (or ``tc`` when the first argument is ``tc``)."""
    argv = list(args) if args[0] == "tc" else ["ip", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise NetworkError(f"{' '.join(argv)} failed ({result.returncode}): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def namespaces() -> list[str]:
    result = ip("netns", "list", check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def namespace_pids(namespace: str) -> list[int]:
    result = ip("netns", "pids", namespace, check=False)
    return [int(pid) for pid in result.stdout.split() if pid.isdigit()]


def delete_namespace(namespace: str) -> None:
    """Kills every process inside, then deletes the namespace (its interfaces go with it)."""
    kill_pids(namespace_pids(namespace))
    ip("netns", "delete", namespace, check=False)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    """Deletes the namespaces of earlier runs whose pytest process is gone (crashed or killed)."""
    removed = []
    for namespace in namespaces():
        match = re.match(rf"^{PREFIX}-(\d+)-", namespace)
        if match and not pid_alive(int(match.group(1))):
            delete_namespace(namespace)
            removed.append(namespace)
    return removed


def remove_run(pid: int) -> None:
    """Deletes every namespace of the run ``pid`` (the last line of defence at session end)."""
    for namespace in namespaces():
        if namespace.startswith(f"{PREFIX}-{pid}-"):
            delete_namespace(namespace)


def unsupported_reason() -> str | None:
    """Why this machine cannot build the test network, or None when it can."""
    if shutil.which("ip") is None:
        return "iproute2 is missing: the `ip` command is not on PATH (apt-get install -y iproute2)"
    if os.geteuid() != 0:
        return ("network namespaces need root: run `sudo python -m pytest tests/netns` "
                "(CI runs as root)")
    probe = f"{PREFIX}-{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
        ip("-n", probe, "link", "set", "lo", "up")
        ip("-n", probe, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1")
        ip("-n", probe, "link", "add", "probebr", "type", "bridge")
    except (NetworkError, OSError, subprocess.TimeoutExpired) as exc:
        return f"network namespaces with veth and bridge are not supported here: {exc}"
    finally:
        delete_namespace(probe)
    return None


@functools.cache
def netem_available() -> bool:
    """Whether the kernel has the netem qdisc (many minimal VM kernels leave it out)."""
    probe = f"{PREFIX}-{os.getpid()}-netem"
    try:
        ip("netns", "add", probe)
        return ip("tc", "-n", probe, "qdisc", "add", "dev", "lo", "root", "netem", "delay",
                  "1ms", check=False).returncode == 0
    finally:
        delete_namespace(probe)


def latency_unsupported_reason(uses_netem: bool) -> str | None:
    """Why hosts cannot get a delayed link here: no netem and no tap devices either."""
    if uses_netem or os.path.exists("/dev/net/tun"):
        return None
    return ("the kernel has no netem qdisc and there is no /dev/net/tun for the user-space "
            "delay line")


@dataclass
class Host:
    """One machine: a namespace with ``lo`` up and ``eth0`` on the bridge."""

    network: Network
    name: str
    index: int
    namespace: str
    address: str
    port: str  # the bridge's interface towards this host, in the switch namespace
    delay_ms: float = 0
    processes: list[HostProcess] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, argv: list[str], *, timeout: float = 60, env: dict | None = None,
            check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """Runs a command inside this host and waits for it (its own process group, so a
        timeout kills everything it started)."""
        process = subprocess.Popen(self.command(argv), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                                   env=env, start_new_session=True,
                                   preexec_fn=parent_death_signal())
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            try:
                out, err = process.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                # Something that left the group still holds the pipes; the namespace's
                # teardown ends it.
                process.wait(5)
                out, err = "", ""
            raise subprocess.TimeoutExpired(argv, timeout, out, err) from None
        result = subprocess.CompletedProcess(argv, process.returncode, out, err)
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, argv, out, err)
        return result

    def start(self, argv: list[str], *, env: dict | None = None, label: str | None = None,
              stdin: bool = False) -> HostProcess:
        """Starts a long-running process inside this host, in its own process group; the
        network stops it at teardown if the test did not."""
        process = HostProcess(self.command(argv), label=label or f"{self.name}: {argv[0]}",
                              env=env, stdin=stdin)
        self.processes.append(process)
        return process

    # -- the link -------------------------------------------------------------------------------
    def cut_link(self) -> None:
        """Pulls the cable at the switch: nothing passes either way, and the host's own
        sockets and addresses stay as they are (as on a real partition)."""
        ip("-n", self.network.switch, "link", "set", self.port, "down")

    def restore_link(self) -> None:
        ip("-n", self.network.switch, "link", "set", self.port, "up")

    @contextlib.contextmanager
    def link_cut(self) -> Iterator[None]:
        self.cut_link()
        try:
            yield
        finally:
            self.restore_link()

    def limit_bandwidth(self, rate: str = "20mbit", burst: str = "32kbit",
                        latency: str = "400ms") -> None:
        """Caps this host's link to ``rate`` in both directions with a token bucket (tbf)."""
        tbf = ["tbf", "rate", rate, "burst", burst, "latency", latency]
        # Host to switch: under netem when the delay is a netem qdisc, else at the root.
        under_netem = self.delay_ms and self.network.uses_netem
        parent = ["parent", "1:", "handle", "10:"] if under_netem else ["root", "handle", "10:"]
        ip("tc", "-n", self.namespace, "qdisc", "replace", "dev", HOST_INTERFACE, *parent, *tbf)
        # Switch to host.
        ip("tc", "-n", self.network.switch, "qdisc", "replace", "dev", self.port, "root", *tbf)

    def link_counters(self) -> dict[str, int]:
        """Bytes and packets through this host's ``eth0`` since it was created."""
        result = ip("-n", self.namespace, "-j", "-s", "link", "show", HOST_INTERFACE)
        stats = json.loads(result.stdout)[0]["stats64"]
        return {"rx_bytes": stats["rx"]["bytes"], "tx_bytes": stats["tx"]["bytes"],
                "rx_packets": stats["rx"]["packets"], "tx_packets": stats["tx"]["packets"]}

    def stop_processes(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class Network:
    """A bridge with hosts on it. Use as a context manager or call ``close``; closing stops
    every process, deletes every namespace and with them every link and the bridge."""

    _count = 0

    def __init__(self, *, uses_netem: bool | None = None):
        Network._count += 1
        self.prefix = f"{PREFIX}-{os.getpid()}-{Network._count}"
        self.switch = f"{self.prefix}-switch"
        self.hosts: dict[str, Host] = {}
        self.uses_netem = netem_available() if uses_netem is None else uses_netem
        self._delay_lines: list[HostProcess] = []
        self._closed = False
        ip("netns", "add", self.switch)
        try:
            ip("-n", self.switch, "link", "set", "lo", "up")
            ip("-n", self.switch, "link", "add", BRIDGE, "type", "bridge")
            ip("-n", self.switch, "link", "set", BRIDGE, "up")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add_host(self, name: str, *, delay_ms: float = 0) -> Host:
        """A new host at the next address; ``delay_ms`` delays everything it sends (netem, or
        a user-space delay line when the kernel has no netem)."""
        if not HOST_NAME.match(name) or name in self.hosts:
            raise ValueError(f"bad or duplicate host name {name!r}")
        index = len(self.hosts) + 1
        host = Host(self, name, index, f"{self.prefix}-{name}", f"{SUBNET}.{index}",
                    f"port{index}", delay_ms)
        self.hosts[name] = host
        ip("netns", "add", host.namespace)
        ip("-n", host.namespace, "link", "set", "lo", "up")
        if delay_ms and not self.uses_netem:
            if reason := latency_unsupported_reason(self.uses_netem):
                raise NetworkError(reason)
            self._plug_delay_line(host)
        else:
            self._plug_veth(host)
        ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", HOST_INTERFACE)
        ip("-n", host.namespace, "link", "set", HOST_INTERFACE, "up")
        if delay_ms and self.uses_netem:
            ip("tc", "-n", host.namespace, "qdisc", "add", "dev", HOST_INTERFACE, "root",
               "handle", "1:", "netem", "delay", f"{delay_ms}ms")
        self._wait_until_up(host)
        return host

    def _plug_veth(self, host: Host) -> None:
        ip("-n", self.switch, "link", "add", host.port, "type", "veth", "peer", "name",
           HOST_INTERFACE, "netns", host.namespace)
        ip("-n", self.switch, "link", "set", host.port, "master", BRIDGE)
        ip("-n", self.switch, "link", "set", host.port, "up")

    def _plug_delay_line(self, host: Host) -> None:
        """Two taps, one on the bridge and one as the host's eth0, and a process between them
        that holds each frame from the host for ``delay_ms`` (what netem would do)."""
        ip("-n", self.switch, "tuntap", "add", "dev", host.port, "mode", "tap")
        ip("-n", self.switch, "link", "set", host.port, "master", BRIDGE)
        ip("-n", self.switch, "link", "set", host.port, "up")
        ip("-n", host.namespace, "tuntap", "add", "dev", HOST_INTERFACE, "mode", "tap")
        line = HostProcess(
            ["ip", "netns", "exec", self.switch, sys.executable, str(DELAY_LINE_SCRIPT),
             "--switch-tap", host.port, "--host-namespace", host.namespace,
             "--host-tap", HOST_INTERFACE, "--delay-ms", str(host.delay_ms)],
            label=f"delay line to {host.name}")
        self._delay_lines.append(line)
        line.wait_for("relaying", timeout=15)

    def _wait_until_up(self, host: Host, timeout: float = 10) -> None:
        """The bridge port forwards only once it is up on both sides; tests should not race it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = ip("-n", host.namespace, "-j", "link", "show", HOST_INTERFACE).stdout
            if json.loads(state)[0].get("operstate") in ("UP", "UNKNOWN"):
                return
            time.sleep(0.05)
        raise NetworkError(f"{host.name}'s {HOST_INTERFACE} did not come up")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            host.stop_processes()
        for line in self._delay_lines:
            line.stop()
        # Anything a test started without a HostProcess (or that escaped its process group)
        # dies with its namespace.
        for host in self.hosts.values():
            delete_namespace(host.namespace)
        delete_namespace(self.switch)

    def processes(self) -> list[HostProcess]:
        return [p for host in self.hosts.values() for p in host.processes] + self._delay_lines
