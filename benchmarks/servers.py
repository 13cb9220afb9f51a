"""The servers a benchmark runs beside its client: ``dcenter`` and ``dworker`` processes, each in
a session of its own, their output read on so that a server logging much never blocks on a
full pipe, and stopped with their process group.
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import psutil

START_TIMEOUT = 60.0

printed: dict[int, collections.deque] = {}  # a server's pid -> its last lines


def command(name: str) -> list[str]:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    found = beside if os.access(beside, os.X_OK) else shutil.which(name)
    if found is None:
        raise SystemExit(f"`{name}` not found: install the dist packages in this environment")
    return [found]


def start(argv: list[str], ready_prefix: str) -> tuple[subprocess.Popen, str]:
    """Start a server in its own session; returns it and the rest of its ``ready_prefix`` line."""
    proc, (rest,) = start_reading(argv, (ready_prefix,))
    return proc, rest


def start_reading(argv: list[str], prefixes: tuple[str, ...]
                  ) -> tuple[subprocess.Popen, list[str]]:
    """Start a server in its own session; returns it and the rest of the lines that begin with
    ``prefixes``, which it prints in that order."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIST_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    found: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefixes[len(found)]):
            found.append(line[len(prefixes[len(found)]):].strip())
            if len(found) == len(prefixes):
                printed[proc.pid] = collections.deque(maxlen=20)
                threading.Thread(target=printed[proc.pid].extend, args=(proc.stdout,),
                                 daemon=True).start()
                return proc, found
    stop(proc)
    raise SystemExit(f"{argv[0]} did not print {prefixes[len(found)]!r} within "
                     f"{START_TIMEOUT:g} s")


def start_center(*options: str, dashboard: bool = False) -> tuple[subprocess.Popen, str, str]:
    """A ``dcenter`` on a free port of 127.0.0.1 with ``options``: the process, its address,
    and its dashboard's URL ("" with ``dashboard=False``, which starts none)."""
    argv = command("dcenter") + ["--host", "127.0.0.1", "--port", "0", *options,
                                 *(["--dashboard-port", "0"] if dashboard else ["--no-dashboard"])]
    if not dashboard:
        proc, address = start(argv, "Start center at ")
        return proc, address, ""
    proc, (address, url) = start_reading(argv, ("Start center at ", "Dashboard at "))
    return proc, address, url


def stop(proc: subprocess.Popen) -> list[str]:
    """Stops ``proc``; returns the last lines it printed after its ready line."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return [line.rstrip() for line in printed.get(proc.pid, ()) if line.strip()]


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


_TABLE_LINE = re.compile(r'(dist_center_entries|dist_tasks|dist_clients)(?:\{[a-z]+="([^"]*)"\})?'
                         r' (\S+)$')


def center_tables(dashboard: str, timeout: float = 30) -> tuple[dict[str, float], int]:
    """The center's table sizes from its ``/metrics`` (``name:label`` -> value), and how many
    lines the page had."""
    with urllib.request.urlopen(dashboard.rstrip("/") + "/metrics", timeout=timeout) as reply:
        lines = reply.read().decode().splitlines()
    found = {}
    for line in lines:
        match = _TABLE_LINE.match(line)
        if match:
            name, label, value = match.groups()
            found[f"{name}:{label}" if label else name] = float(value)
    return found, len(lines)
