"""Spawning and reaping the processes of a benchmark run.

Every process the suite starts gets its own session (so it and whatever it forks can be
signalled as a group) and an environment marker naming this run. Ray daemonizes its servers
out of the process tree, and some launchers start children in new sessions, so teardown kills
by three tests -- the session ids we created, the marker in /proc/<pid>/environ, descendants of
what we spawned -- and only ever by pid.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil

MARKER = "DIST_BENCH_RUN"


class Spawner:
    def __init__(self, log_dir: Path, env: dict[str, str]):
        self.run_id = uuid.uuid4().hex
        self.log_dir = log_dir
        self.base_env = dict(env, **{MARKER: self.run_id})
        self.procs: list[subprocess.Popen] = []
        self.sessions: set[int] = set()
        self.known_pids: set[int] = set()
        self.scratch_dirs: list[str] = []  # removed once the processes using them are gone
        self._counter = 0

    def spawn(self, name: str, argv: list[str], stdin=subprocess.DEVNULL,
              stdout_pipe: bool = False) -> tuple[subprocess.Popen, Path]:
        """Start ``argv`` in a new session; stderr (and stdout unless piped) go to a log file."""
        self._counter += 1
        log = self.log_dir / f"{self._counter:02d}-{name}.log"
        handle = open(log, "wb")
        proc = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE if stdout_pipe else handle,
            stderr=handle, env=self.base_env, start_new_session=True,
        )
        handle.close()
        self.procs.append(proc)
        self.sessions.add(proc.pid)  # start_new_session makes the child its session leader
        self.known_pids.add(proc.pid)
        return proc, log

    def remember_tree(self) -> None:
        """Note every current descendant, so daemons that get reparented later are still ours."""
        for proc in self.procs:
            try:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    self.known_pids.add(child.pid)
            except psutil.NoSuchProcess:
                pass

    def ours(self) -> list[psutil.Process]:
        self.remember_tree()
        found = []
        me = os.getpid()
        for p in psutil.process_iter():
            if p.pid == me:
                continue
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    continue
                if p.pid in self.known_pids or os.getsid(p.pid) in self.sessions:
                    found.append(p)
                elif p.environ().get(MARKER) == self.run_id:
                    found.append(p)
            except (psutil.Error, OSError):
                continue
        return found

    def kill_one(self, proc: subprocess.Popen, grace: float = 3.0) -> None:
        """Kill one spawned process and its session (a driver that overran its timeout)."""
        victims = []
        for p in self.ours():
            try:
                if p.pid == proc.pid or os.getsid(p.pid) == proc.pid:
                    victims.append(p)
            except OSError:
                continue
        for p in victims:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(victims, timeout=grace)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        if proc.stdout:
            proc.stdout.close()
        if proc in self.procs:
            self.procs.remove(proc)
        self.sessions.discard(proc.pid)
        self.known_pids.difference_update({proc.pid, *(p.pid for p in victims)})

    def kill_all(self, grace: float = 5.0) -> None:
        """SIGTERM everything of ours, then SIGKILL what is still alive after ``grace`` seconds."""
        victims = self.ours()
        for p in victims:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(victims, timeout=grace)
        # A dying parent may have forked a replacement meanwhile (nannies restart workers).
        alive = {p.pid: p for p in alive}
        for p in self.ours():
            alive.setdefault(p.pid, p)
        for p in alive.values():
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(list(alive.values()), timeout=grace)
        for proc in self.procs:
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            if proc.stdout:
                proc.stdout.close()
        self.procs.clear()
        self.sessions.clear()
        self.known_pids.clear()
        for path in self.scratch_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.scratch_dirs.clear()


def wait_for_line(log: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    """Poll a log file until a line matches ``pattern``; fail early when the process dies."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace")
        match = regex.search(text)
        if match:
            return match
        if proc.poll() is not None:
            raise RuntimeError(f"{log.name}: exited with {proc.returncode} before "
                               f"printing /{pattern}/: {tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{log.name}: no /{pattern}/ within {timeout:.0f}s: {tail(log)}")
        time.sleep(0.005)


def tail(log: Path, lines: int = 6) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(pid: int) -> int:
    """RSS of a process and all its descendants, in bytes (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    return sum_rss(procs)


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def sum_rss(procs) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def bare_cluster(bin_dir: Path, env: dict[str, str], procs: list[subprocess.Popen],
                 wrap: Callable[[list[str], str], list[str]] = lambda command, role: command,
                 center_env: dict[str, str] | None = None) -> str:
    """Start ``dcenter`` (no dashboard) and two single-threaded ``dworker`` without a nanny,
    the smallest cluster to time a round trip on, and return the center's address. The
    processes are appended to ``procs`` as they start (center first), so the caller's cleanup
    also covers a start that fails halfway. ``wrap`` may run each command under a tool, given
    the role (``center``, ``w0``, ``w1``)."""
    center = subprocess.Popen(wrap([str(bin_dir / "dcenter"), "--host", "127.0.0.1", "--port",
                                    "0", "--no-dashboard"], "center"),
                              env=center_env or env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    procs.append(center)
    assert center.stdout is not None
    for line in center.stdout:
        match = re.search(r"Start center at (\S+)", line)
        if match:
            break
    else:
        raise RuntimeError("dcenter exited before listening")
    address = match.group(1)
    procs.extend(subprocess.Popen(wrap([str(bin_dir / "dworker"), address, "--nthreads", "1",
                                        "--no-nanny", "--name", f"w{i}"], f"w{i}"), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i in range(2))
    return address


def stop_all(procs: list[subprocess.Popen], grace: float = 30.0) -> None:
    """Terminate what ``bare_cluster`` (and the caller) started, newest first, and reap it."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(grace)
