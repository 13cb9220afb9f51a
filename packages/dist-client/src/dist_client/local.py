"""The local cluster of ``Executor()``: a center and workers as subprocesses of this process.

Its workers see this process's ``sys.path`` and working directory, so functions from the
user's own modules import there as they do here. It runs with a fresh random token.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from dist_protocol.security import new_token

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
        paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        self._env = {**os.environ, "DIST_TOKEN": self.token,
                     "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
                     "PYTHONUNBUFFERED": "1"}
        self._env.pop("DIST_TOKEN_FILE", None)
        atexit.register(self.close)
        try:
            center = self._spawn(["dist_center.cli", "--host", host, "--port", "0"])
            self.address = self._wait_for(center, "Start center at ")
            workers = [self._spawn(["dist_worker.cli", self.address, "--host", host,
                                    "--nthreads", str(self.threads_per_worker),
                                    "--name", f"local-{i}"])
                       for i in range(self.n_workers)]
            for worker in workers:
                self._wait_for(worker, "Registered with center at: ")
        except BaseException:
            self.close()
            raise

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", *args], env=self._env,
                                   cwd=os.getcwd(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   preexec_fn=_die_with_parent if _in_main_thread() else None)
        process.lines = queue.Queue()  # type: ignore[attr-defined]
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()
        self.processes.append(process)
        return process

    @staticmethod
    def _pump(process: subprocess.Popen) -> None:
        """Read a child's output so its pipe never fills; keep the lines for start-up."""
        for line in process.stdout:
            process.lines.put(line)  # type: ignore[attr-defined]
            if os.environ.get("DIST_LOCAL_VERBOSE"):
                sys.stderr.write(line)
        process.lines.put(None)  # type: ignore[attr-defined]

    def _wait_for(self, process: subprocess.Popen, prefix: str) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        seen = []
        while time.monotonic() < deadline:
            try:
                line = process.lines.get(timeout=0.1)  # type: ignore[attr-defined]
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        output = "".join(seen[-20:])
        raise RuntimeError(f"local cluster failed to start ({' '.join(process.args[2:4])}):\n"
                           f"{output}")

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 5
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        atexit.unregister(self.close)
