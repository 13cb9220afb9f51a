"""``dcenter``'s process: its dashboard options (the printed URL serves, env vars work,
--no-dashboard is off) and the allocator it runs on."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.timeout(60)


def start_center(*args: str, module: str = "dist_center.cli", **env: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    return subprocess.Popen([sys.executable, "-m", module, "--port", "0", *args],
                            env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def stop(process: subprocess.Popen) -> str:
    """Ends the center's process group; returns the rest of its output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        rest, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        rest, _ = process.communicate()
    return rest


def test_dashboard_port_from_the_environment_serves_the_printed_url():
    center = start_center(DIST_DASHBOARD_PORT="0")
    try:
        assert center.stdout.readline().startswith("Start center at ")
        line = center.stdout.readline()
        assert line.startswith("Dashboard at http://127.0.0.1:"), line
        url = line.split("Dashboard at ", 1)[1].strip()
        assert not url.endswith(":8788/"), "port 0 means any free port"
        with urllib.request.urlopen(url + "health", timeout=10) as response:
            assert response.read() == b"ok\n"
        with urllib.request.urlopen(url + "api/status", timeout=10) as response:
            assert json.loads(response.read())["workers"] == 0
    finally:
        stop(center)


@pytest.mark.parametrize("how", [("--no-dashboard",), ()])
def test_no_dashboard(how):
    center = start_center(*how, **({} if how else {"DIST_DASHBOARD": "false"}))
    try:
        assert center.stdout.readline().startswith("Start center at ")
    finally:
        rest = stop(center)
    assert "Dashboard at" not in rest


def allocator_of(process: subprocess.Popen) -> str | None:
    with open(f"/proc/{process.pid}/environ", "rb") as f:
        for entry in f.read().split(b"\0"):
            if entry.startswith(b"PYTHONMALLOC="):
                return entry.split(b"=", 1)[1].decode()
    return None


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc/PID/environ")
@pytest.mark.parametrize("chosen, expected", [(None, "malloc"), ("pymalloc", "pymalloc")])
# dist_center.launch is what ``dcenter`` runs: it chooses before importing the center.
@pytest.mark.parametrize("module", ["dist_center.cli", "dist_center.launch"])
def test_the_center_runs_on_the_c_allocator_unless_told_otherwise(chosen, expected, module,
                                                                   monkeypatch):
    """So that memory freed after a big release goes back to the system (see launch.py)."""
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    center = start_center("--no-dashboard", module=module,
                          **({"PYTHONMALLOC": chosen} if chosen else {}))
    try:
        assert center.stdout.readline().startswith("Start center at ")
        assert allocator_of(center) == expected
    finally:
        stop(center)
