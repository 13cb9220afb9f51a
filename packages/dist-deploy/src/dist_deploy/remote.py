"""A server started on another machine through a command such as ``ssh``: the token goes
through its standard input (never a command line, which other users of that machine can
read), its output comes back line by line, and closing its standard input stops it.

On the far side a small bootstrap (``BOOTSTRAP``, Python) reads the token, starts the server
with it in its environment and watches its standard input: when that ends -- this side closed
it, or died, or the connection broke -- it stops the server (SIGTERM, SIGKILL after a grace
period). So nothing outlives the cluster that started it.
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("dist.deploy")
LINES_KEPT = 1000

# Run as ``python -c BOOTSTRAP COMMAND...``; the token is the first line of standard input.
BOOTSTRAP = """\
import os, signal, subprocess, sys, threading
token = sys.stdin.readline().strip()
env = dict(os.environ, PYTHONUNBUFFERED="1")
if token:
    env["DIST_TOKEN"] = token
child = subprocess.Popen(sys.argv[1:], env=env, stdin=subprocess.DEVNULL)
def stop(*_):
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
def watch():
    while sys.stdin.buffer.read1(4096):
        pass
    stop()
threading.Thread(target=watch, daemon=True).start()
for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(number, stop)
sys.exit(child.wait())
"""


def bootstrap_command(python: str, argv: list[str]) -> str:
    """The shell command (for a remote shell) that runs ``argv`` under the bootstrap."""
    return " ".join(shlex.quote(part) for part in [python, "-c", BOOTSTRAP, *argv])


class _Spawner:
    """One daemon thread that starts processes: it ends only with this process (a pool's
    threads are joined at interpreter exit, before the clusters' own clean-up runs)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="dist-deploy-spawn", daemon=True).start()

    def _run(self) -> None:
        while True:
            future, function, args, kwargs = self._requests.get()
            try:
                future.set_result(function(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 -- raised in the asking thread
                future.set_exception(exc)

    def submit(self, function, *args, **kwargs) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._requests.put((future, function, args, kwargs))
        return future


_SPAWNER = _Spawner()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RemoteProcess:
    """``argv`` (e.g. ``ssh host CMD``) running with the token fed on its standard input."""

    def __init__(self, argv: list[str], name: str, token: str | None):
        self.name = name
        self.argv = argv
        self.lines: collections.deque[str] = collections.deque(maxlen=LINES_KEPT)
        self._changed = threading.Condition()
        # Started from one long-lived thread: the kernel sends the parent-death signal when
        # the forking *thread* ends, so a process started by a short-lived one (adaptive
        # scaling's, say) would be stopped with it; this thread ends only with the process.
        self.process = _SPAWNER.submit(
            subprocess.Popen, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
            start_new_session=True, preexec_fn=_die_with_parent).result()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((token or "") + "\n")
            self.process.stdin.flush()
        except OSError:
            pass  # it ended already: its output says why
        threading.Thread(target=self._pump, daemon=True, name=f"output of {name}").start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            log.info("[%s] %s", self.name, line.rstrip())
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, prefix: str, timeout: float) -> str:
        """The rest of the first output line starting with ``prefix``; ``RuntimeError`` with the
        last lines if the process ends or prints none within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                lines = list(self.lines)
                for line in lines[seen:]:
                    if line.startswith(prefix):
                        return line[len(prefix):].strip()
                seen = len(lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    break
                self._changed.wait(min(left, 0.5))
        tail = "\n".join(list(self.lines)[-20:])
        raise RuntimeError(f"{self.name} did not start ({' '.join(self.argv[:3])} ...):\n{tail}")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """Close its standard input (the far side then stops the server) and wait; terminate
        it if it takes longer than ``grace`` seconds."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
