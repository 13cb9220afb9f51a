"""What an operator sees: a worker that cannot find its center says so, a worker that loses it
says why and says again when it is back, and both CLIs' ``--help`` read whole at 80 columns.

Reproduces: ``dworker 127.0.0.1:<wrong port>`` printed "Start worker at ..." and then nothing,
forever; a worker that lost its center printed ``lost the center at ...: None`` and nothing
when it registered again; ``dcenter --help`` showed ``Usage: python -m dist_center.cli`` and
cut option and variable names at 80 columns (``--heartbeat-timeo…``).
"""
from __future__ import annotations

import importlib
import socket
import subprocess
import time

import pytest

from .conftest import command, hermetic_environment

pytestmark = pytest.mark.timeout(90)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def next_line_with(worker, text: str, timeout: float = 30) -> str:
    """The first output line containing ``text`` (log lines start with a time stamp, so
    ``wait_for``'s prefix match does not fit them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in worker.output().splitlines():
            if text in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no line with {text!r} in:\n{worker.output()}")


@pytest.mark.parametrize("nanny, timeout", [(False, 12), (True, 3)])
def test_a_wrong_center_address_is_a_warning_and_timeout_gives_up(processes, nanny, timeout):
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    worker = processes.start_worker(nowhere, "--timeout", str(timeout), nanny=nanny,
                                    wait=False)
    warning = next_line_with(worker, "cannot reach the center")
    assert nowhere in warning and "Connection refused" in warning, worker.output()
    assert worker.wait(timeout=timeout + 30) == 3  # given up, not restarted by a nanny
    # Warned again about every 10 s while it lasted (and no more often).
    again = [line for line in worker.output().splitlines()
             if f"still cannot reach the center at {nowhere} after" in line]
    assert len(again) == (1 if timeout > 10 else 0), worker.output()
    output = worker.output()
    assert f"giving up: no center at {nowhere}" in output
    assert "last error:" in output and "Connection refused" in output


def test_without_timeout_the_worker_keeps_trying_and_registers_when_the_center_comes(
        processes):
    port = free_port()
    address = f"127.0.0.1:{port}"
    worker = processes.start_worker(address, wait=False)
    next_line_with(worker, f"cannot reach the center at {address}")
    center = processes.start_center("--port", str(port))
    assert center.address == address
    worker.wait_registered()
    assert worker.popen.poll() is None


def test_a_worker_that_loses_its_center_says_why_and_registers_again(processes):
    port = free_port()
    center = processes.start_center("--port", str(port))
    address = center.address
    worker = processes.start_worker(address)
    assert worker.matching("Registered with center at: ") == [address]

    center.kill()
    lost = next_line_with(worker, "lost the center at")
    assert address in lost and not lost.rstrip().endswith("None")
    reason = lost.split(f"lost the center at {address}: ", 1)[1]
    assert reason and reason != "None"

    processes.start_center("--port", str(port))
    worker.wait_registered(nth=2)
    assert worker.matching("Registered with center at: ") == [address, address]


@pytest.mark.parametrize("program, module", [("dcenter", "dist_center.cli"),
                                             ("dworker", "dist_worker.cli")])
def test_help_names_the_program_and_shows_whole_names_at_80_columns(program, module):
    env = hermetic_environment({"COLUMNS": "80", "TERM": "dumb"})
    result = subprocess.run([*command(program, module), "--help"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"Usage: {program} "), text.splitlines()[0]
    assert "python -m" not in text and "…" not in text
    assert max(map(len, text.splitlines())) <= 80
    # Every option and every environment variable appears whole.
    options = importlib.import_module(module).COMMAND.options
    assert options
    for option in options:
        for name in option.opts:
            assert name in text, name
        if option.envvar:
            assert option.envvar in text, option.envvar
    # --log-level has a description
    log_level = text.split("--log-level", 1)[1].split("\n  --", 1)[0]
    assert "how much to log" in log_level


def test_a_bad_log_level_is_a_usage_error_naming_the_choices():
    env = hermetic_environment(None)
    result = subprocess.run([*command("dcenter", "dist_center.cli"), "--log-level", "loud"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "Usage: dcenter" in result.stderr and "debug, info, warning" in result.stderr
    assert "Traceback" not in result.stderr
