"""Long-running processes of a test: own process group, output kept, stopped for sure."""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
import time

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


def kill_pids(pids: list[int], grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL whatever is left after ``grace`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _alive(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie whose parent has not reaped it yet counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def die_with_parent() -> None:
    """In the child: SIGKILL when the process that started it dies, so even a pytest killed
    outright leaves no server running (the next run deletes its namespaces)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def parent_death_signal():
    """``die_with_parent`` for processes started from the main thread; none from other threads,
    since the kernel signals the child when the thread that forked it ends, not the process."""
    return die_with_parent if threading.current_thread() is threading.main_thread() else None


class ProcessExited(RuntimeError):
    """The process ended while a test was waiting for it to say something."""


class HostProcess:
    """A process in its own session (so its group can be signalled as one) whose combined
    stdout and stderr are collected line by line by a thread, never blocking the process."""

    def __init__(self, argv: list[str], *, label: str, env: dict | None = None,
                 stdin: bool = False):
        self.argv = argv
        self.label = label
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env, text=True,
            bufsize=1, start_new_session=True, preexec_fn=parent_death_signal())
        self._reader = threading.Thread(target=self._read, name=f"output of {label}",
                                        daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        self.popen.wait()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        """The first output line from index ``start`` on that matches ``pattern`` (a regex);
        raises TimeoutError or ProcessExited, with the output so far, when none comes."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = start
        with self._changed:
            while True:
                for line in self.lines[checked:]:
                    if match := regex.search(line):
                        return match
                checked = len(self.lines)
                if self.popen.poll() is not None and not self._reader.is_alive():
                    raise ProcessExited(f"{self.label} exited with {self.popen.returncode} "
                                        f"before printing {pattern!r}:\n{self.output()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.label} did not print {pattern!r} within "
                                       f"{timeout} s:\n{self.output()}")
                self._changed.wait(min(remaining, 0.5))

    def send(self, line: str) -> None:
        """Writes a line to the process's stdin (started with ``stdin=True``)."""
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def wait(self, timeout: float) -> int:
        """Waits for the process to end; raises TimeoutError (with its output) if it does not."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.label} still running after {timeout} s:\n"
                               f"{self.output()}") from None
        self._reader.join(5)
        return code

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM to the whole group, SIGKILL after ``grace``; returns the exit code."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Children that outlived their leader still belong to the group.
        self.signal(signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.wait(5)
        self._reader.join(5)
        if self.popen.stdin:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        return self.popen.returncode
