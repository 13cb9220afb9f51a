"""The local cluster of ``Executor()``: a center and workers as subprocesses of this process.

Its workers see this process's ``sys.path`` and working directory, so functions from the
user's own modules import there as they do here. It runs with a fresh random token. Once
they are up, what its processes print (a task's ``print``, warnings, the workers' log) reaches
this process's stdout and stderr line by line, prefixed with their name (``local_output``).
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time

from dist_protocol.security import new_token

from .local_output import ChildOutput

START_TIMEOUT = 30.0


def _die_with_parent() -> None:
    """In a child: get SIGTERM when this process dies, so no cluster outlives its client."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _in_main_thread() -> bool:
    """The kernel sends the parent-death signal when the forking *thread* ends, so a cluster
    started from a short-lived thread would die with it; only the main thread lives as long as
    the process (other threads rely on ``close()`` and the atexit hook instead)."""
    return threading.current_thread() is threading.main_thread()


def _missing_packages() -> list[str]:
    return [name for name, module in (("dist-center", "dist_center"),
                                      ("dist-worker", "dist_worker"))
            if importlib.util.find_spec(module) is None]


class LocalCluster:
    def __init__(self, n_workers: int | None = None, threads_per_worker: int | None = None,
                 host: str = "127.0.0.1"):
        missing = _missing_packages()
        if missing:
            raise RuntimeError(
                f"Executor() with no address starts a local cluster, which needs "
                f"{' and '.join(missing)}: pip install 'dist-client[local]' -- or give the "
                "address of a running center: Executor('HOST:8787')")
        cores = os.cpu_count() or 1
        self.n_workers = n_workers or min(cores, 4)
        self.threads_per_worker = threads_per_worker or max(1, cores // self.n_workers)
        self.token = new_token()
        self.processes: list[subprocess.Popen] = []
        self.worker_addresses: list[str] = []
        self.dashboard_link = ""
        paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        self._env = {**os.environ, "DIST_TOKEN": self.token,
                     "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
                     "PYTHONUNBUFFERED": "1"}
        self._env.pop("DIST_TOKEN_FILE", None)
        atexit.register(self.close)
        try:
            center = self._spawn(["dist_center.cli", "--host", host, "--port", "0"], "center")
            self.address = center.wait_for("Start center at ", START_TIMEOUT)
            self.dashboard_link = center.wait_for("Dashboard at ", START_TIMEOUT)
            center.go_live()
            workers = [self._spawn(["dist_worker.cli", self.address, "--host", host,
                                    "--nthreads", str(self.threads_per_worker),
                                    "--name", f"local-{i}"], f"local-{i}")
                       for i in range(self.n_workers)]
            for worker in workers:
                worker.wait_for("Registered with center at: ", START_TIMEOUT)
                worker.go_live()  # its output and warnings reach the terminal from now on
        except BaseException:
            self.close()
            raise

    def _spawn(self, args: list[str], name: str) -> ChildOutput:
        process = subprocess.Popen([sys.executable, "-m", *args], env=self._env,
                                   cwd=os.getcwd(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                   errors="replace",
                                   preexec_fn=_die_with_parent if _in_main_thread() else None)
        self.processes.append(process)
        return ChildOutput(process, name)

    def close(self) -> None:
        # The workers first, then the center: a worker that saw its center go first would
        # report the loss on the user's terminal as it shuts down.
        workers, center = self.processes[1:], self.processes[:1]
        for group in (workers, center):
            for process in group:
                if process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + 5
            for process in group:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        atexit.unregister(self.close)
