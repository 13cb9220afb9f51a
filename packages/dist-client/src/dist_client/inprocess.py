"""The local cluster with ``processes=False``: the real center and workers (dist-center's
``Center``, dist-worker's ``Worker``) running in this process, on one event loop thread of
their own; each worker runs its tasks on threads of its own pool.

What a process of its own gave them, and what they do instead here:

* **No nanny.** Nothing restarts a worker: ``Executor.restart()`` makes each worker forget
  every task and value and register again as a new, empty worker (what a worker without a
  nanny does). It cannot give the interpreter back: modules a task imported and globals it
  set stay, and a task still running finishes on its thread, its result dropped.
* **No signal handlers.** ``dcenter``/``dworker`` handle SIGINT and SIGTERM; handlers belong
  to the main thread and to the user's program here, so none is installed: ``close()`` (or
  the process's exit) stops the servers.
* **One process's memory.** The process's resident memory is the user's program and every
  worker together, so it cannot tell how much one worker uses: the limits that act on it
  (spill past *spill*, pause past *pause*, restart past *terminate*) are off, and a worker
  spills its values to disk once their own sizes pass *target* of its ``memory_limit``.
  (dask's in-process workers each compare the whole process to their own limit, so several
  of them pause long before the memory is used.)
* **No removal for silence.** A worker here shares the center's process and event loop:
  whatever stalls one (the user's own code holding the GIL for a while, in a notebook cell,
  say) stalls the other, so silence tells nothing, and the center does not remove a worker
  for it (it did, every one of them, after each such stall).
* **The process is the user's.** A task calling ``sys.exit()`` fails with ``SystemExit``, as
  anywhere; one calling ``os._exit()`` (or crashing the interpreter) ends the user's program
  with the cluster.
* **``close()`` leaves nothing**: the workers, the center, its dashboard and the loop's
  thread stop, their sockets and spill folders go; only a task still running finishes on its
  thread first (a thread cannot be stopped from outside).
* **Process-wide settings are left alone**: the garbage collector's thresholds, the file
  limit and the allocator that ``dcenter``/``dworker`` tune for themselves; only with
  ``silence_logs`` do the servers' loggers get a level (given back at ``close()``).

Values still travel between workers as bytes over loopback TCP, pickled as between processes.
"""
from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from dist_protocol.addresses import format_address

from . import task_executors
from .core.loop import LoopThread

if TYPE_CHECKING:
    from dist_center.server import Center
    from dist_worker.server import Worker

# The loggers of the servers (the client's own, such as dist.comm, keep their level).
SERVER_LOGGERS = ("dist.center", "dist.dashboard", "dist.worker")
STOP_TIMEOUT = 10.0


class InProcessServers:
    """A center, then workers, in this process; ``close()`` stops them and their thread."""

    def __init__(self, host: str, token: str, dashboard_port: int | None,
                 log_level: int | None, local_directory: str | None, start_timeout: float):
        from dist_center.server import Center
        self.host = host
        self.token = token
        self.local_directory = local_directory
        self.start_timeout = start_timeout
        self._levels: dict[str, int] = {}
        if log_level is not None:
            for name in SERVER_LOGGERS:
                logger = logging.getLogger(name)
                self._levels[name] = logger.level
                logger.setLevel(log_level)
        self._loop: LoopThread | None = LoopThread(name="dist-local-cluster")
        self.center: Center | None = None
        self.address = ""  # the center's, once it listens

        async def start_center() -> Center:
            center = Center(format_address(host, 0), token=token,
                            dashboard_port=dashboard_port, heartbeat_timeout=math.inf)
            self.center = center  # (to be closed if starting it fails half-way)
            await center.start()
            return center

        try:
            center = self._run(start_center(), start_timeout)
        except BaseException:
            self.close()
            raise
        self.address = center.address
        self.dashboard_link = center.dashboard.url if center.dashboard is not None else ""

    def _run(self, coro: Any, timeout: float | None = STOP_TIMEOUT) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the local cluster is closed")
        return self._loop.run(coro, timeout)

    def start_worker(self, name: str, nthreads: int, memory_limit: str | float | None) -> Worker:
        """A worker listening and on its way to register (``wait_registered``)."""
        from dist_worker.memory import MemoryPolicy, parse_memory_limit
        from dist_worker.server import Worker
        limit = parse_memory_limit("auto" if memory_limit is None else str(memory_limit),
                                   nthreads)
        # Only the values' own sizes tell one worker from another here (see above).
        policy = MemoryPolicy(limit=limit, spill=None, pause=None, terminate=None)

        async def start() -> Worker:
            worker = Worker(self.address, host=self.host, nthreads=nthreads, name=name,
                            token=self.token, memory_policy=policy,
                            local_directory=self.local_directory, announce_registration=False)
            # Even in a process started by a nanny (a task that starts a cluster), an exit
            # would end the user's program, not restart a worker.
            worker.monitor.under_nanny = False
            await worker.start()
            return worker

        return self._run(start(), self.start_timeout)

    def wait_registered(self, worker: Worker) -> None:
        self._run(asyncio.wait_for(worker.registered.wait(), self.start_timeout), None)

    def stop_worker(self, worker: Worker) -> None:
        if self._loop is not None:
            self._run(_stop_worker(worker))

    @staticmethod
    def worker_gone(worker: Worker) -> bool:
        return worker.stopped.is_set()

    def close(self) -> None:
        """Stop the center and the loop's thread (the workers first: ``stop_worker``)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            # Before the center: they say goodbye to it rather than find it gone.
            if self.address:
                task_executors.close_executors_of(self.address)
            if self.center is not None:
                loop.run(_stop_center(self.center), STOP_TIMEOUT)
        finally:
            loop.stop()
            for name, level in self._levels.items():
                logging.getLogger(name).setLevel(level)
            self._levels.clear()


async def _stop_worker(worker: Worker) -> None:
    await worker.close("the local cluster closed")
    await asyncio.sleep(0)  # the closed connections' transports let go of their sockets


async def _stop_center(center: Center) -> None:
    await center.close()
    await asyncio.sleep(0)
    # Threads the servers asked of the loop (``asyncio.to_thread``) end with it.
    await asyncio.get_running_loop().shutdown_default_executor()
