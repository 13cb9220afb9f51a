"""The local cluster of ``Executor()``: a center and workers as subprocesses of this process
-- or, with ``processes=False``, in this process (``inprocess.py``).

Its subprocesses see this process's ``sys.path`` and working directory, so functions from the
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
from typing import Any

from dist_protocol.security import new_token

from .cluster import Cluster
from .inprocess import InProcessServers
from .local_options import (DEFAULT_DASHBOARD_ADDRESS, dashboard_port, level_name, log_level,
                            refuse, workers_and_threads)
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


class LocalCluster(Cluster):
    """A center and ``n_workers`` workers as subprocesses of this process; ``scale`` and
    ``adapt`` start and retire more (``dist_deploy.LocalCluster`` is this class).

    The keywords are dask's ``LocalCluster``'s:

    * ``processes=False``: the center and workers run in this process instead, on a thread
      of their own (see ``inprocess.py`` for what that changes); by default one worker with
      a thread per core, where subprocesses default to up to 4 workers sharing the cores;
    * ``dashboard_address``: ``None`` (or ``False``) for no dashboard; ``":PORT"`` (``":0"``
      for any free port) or ``"HOST:PORT"`` with HOST the cluster's ``host``; a taken port
      falls back to a free one, with a warning;
    * ``silence_logs``: the level below which the cluster's servers log nothing
      (``logging.ERROR``, ``"error"``); ``None``: as they would anyway (warnings and worse);
    * ``local_directory``: where each worker makes its folder for spilled values (removed
      when it stops); by default the system's temporary folder.
    """

    worker_prefix = "local"

    def __init__(self, n_workers: int | None = None, threads_per_worker: int | None = None,
                 host: str = "127.0.0.1", memory_limit: str | float | None = None, *,
                 processes: bool = True, dashboard_address: Any = DEFAULT_DASHBOARD_ADDRESS,
                 silence_logs: Any = None, local_directory: str | os.PathLike | None = None,
                 **unsupported: Any):
        refuse(unsupported, "LocalCluster")
        dashboard = dashboard_port(dashboard_address, host)
        level = log_level(silence_logs)
        missing = _missing_packages()
        if missing:
            raise RuntimeError(
                f"Executor() with no address starts a local cluster, which needs "
                f"{' and '.join(missing)}: pip install 'dist-client[local]' -- or give the "
                "address of a running center: Executor('HOST:8787')")
        self.n_workers, threads = workers_and_threads(processes, n_workers, threads_per_worker,
                                                      os.cpu_count() or 1)
        super().__init__(threads)
        self.host = host
        self.memory_limit = memory_limit
        self.local_directory = None if local_directory is None else os.fspath(local_directory)
        self.token = token = new_token()
        self._pid = os.getpid()
        self.center_process: subprocess.Popen | None = None
        self.in_process: InProcessServers | None = None
        self.dashboard_link = ""
        paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        self._env = {**os.environ, "DIST_TOKEN": self.token,
                     "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
                     "PYTHONUNBUFFERED": "1"}
        self._env.pop("DIST_TOKEN_FILE", None)
        self._log_options = [] if level is None else ["--log-level", level_name(level)]
        atexit.register(self.close)
        try:
            if processes:
                self._start_subprocesses(dashboard)
            else:
                self._start_in_process(token, dashboard, level)
            self.status = "running"
        except BaseException:
            self.close()
            raise

    def _start_subprocesses(self, dashboard: int | None) -> None:
        dashboard_options = (["--no-dashboard"] if dashboard is None
                             else ["--dashboard-port", str(dashboard)])
        # The allocator the center would otherwise start a second time to get (see
        # dist_center.launch), set from the start. The entry points (``launch``) import each
        # program with the collector off, as dcenter and dworker do.
        center = self._spawn(["dist_center.launch", "--host", self.host, "--port", "0",
                              *dashboard_options, *self._log_options], "center",
                             {"PYTHONMALLOC": self._env.get("PYTHONMALLOC") or "malloc"})
        self.center_process = center.process
        self.address = center.wait_for("Start center at ", START_TIMEOUT)
        if dashboard is not None:
            self.dashboard_link = center.wait_for("Dashboard at ", START_TIMEOUT)
        center.go_live()
        self.scale_up(self.n_workers)
        for output in list(self.workers.values()):
            output.wait_for("Registered with center at: ", START_TIMEOUT)
            output.go_live()  # its output and warnings reach the terminal from now on

    def _start_in_process(self, token: str, dashboard: int | None, level: int | None) -> None:
        self.in_process = InProcessServers(self.host, token, dashboard, level,
                                           self.local_directory, START_TIMEOUT)
        self.address = self.in_process.address
        self.dashboard_link = self.in_process.dashboard_link
        self.scale_up(self.n_workers)
        for worker in list(self.workers.values()):
            self.in_process.wait_registered(worker)

    @property
    def processes(self) -> list[subprocess.Popen]:
        """The center's process, then the workers' (none in-process)."""
        if self.in_process is not None:
            return []
        center = [self.center_process] if self.center_process is not None else []
        return center + [output.process for output in self.workers.values()]

    def start_worker(self, name: str) -> Any:
        if self.in_process is not None:
            return self.in_process.start_worker(name, self.threads_per_worker,
                                                self.memory_limit)
        args = ["dist_worker.launch", self.address, "--host", self.host,
                "--nthreads", str(self.threads_per_worker), "--name", name, *self._log_options]
        if self.memory_limit is not None:
            args += ["--memory-limit", str(self.memory_limit)]
        if self.local_directory is not None:
            args += ["--local-directory", self.local_directory]
        output = self._spawn(args, name)
        if self.status == "running":  # scaled up later: nobody waits for it to be up
            threading.Thread(target=_live_when_registered, args=(output,), daemon=True,
                             name=f"start of {name}").start()
        return output

    def stop_worker(self, name: str, handle: Any) -> None:
        if self.in_process is not None:
            self.in_process.stop_worker(handle)
        else:
            _stop([handle.process])

    def worker_gone(self, name: str, handle: Any) -> bool:
        if self.in_process is not None:
            return self.in_process.worker_gone(handle)
        return handle.process.poll() is not None

    def stop_center(self) -> None:
        # After the workers (the base closes them first): a worker that saw its center go
        # first would report the loss on the user's terminal as it shuts down.
        if self.center_process is not None:
            _stop([self.center_process])
            self.center_process = None
        if self.in_process is not None:
            self.in_process.close()

    def _spawn(self, args: list[str], name: str,
               environment: dict[str, str] | None = None) -> ChildOutput:
        process = subprocess.Popen([sys.executable, "-m", *args],
                                   env={**self._env, **(environment or {})},
                                   cwd=os.getcwd(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                   errors="replace",
                                   preexec_fn=_die_with_parent if _in_main_thread() else None)
        return ChildOutput(process, name)

    def close(self) -> None:
        if os.getpid() != self._pid:
            # A child forked from the process that started the cluster (exiting, say): the
            # cluster is that process's, and goes on serving it.
            self.status = "closed"
            return
        super().close()
        atexit.unregister(self.close)


def _live_when_registered(output: ChildOutput) -> None:
    try:
        output.wait_for("Registered with center at: ", START_TIMEOUT)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
    output.go_live()


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 5
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
