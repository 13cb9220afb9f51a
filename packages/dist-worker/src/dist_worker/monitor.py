"""Heartbeats and memory: what the worker tells the center every interval, and its memory
limits (pause above the high-water mark, stop above the hard limit so the nanny restarts it)."""
from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from dist_protocol.messages import Heartbeat

if TYPE_CHECKING:
    from .server import Worker

log = logging.getLogger("dist.worker")

PAUSE_FRACTION = 0.8
TERMINATE_FRACTION = 0.95


class Monitor:
    def __init__(self, worker: Worker):
        self.worker = worker
        try:
            import psutil
            self._process = psutil.Process(os.getpid())
            self._process.cpu_percent()
        except ImportError:  # psutil is optional for the metrics
            self._process = None

    def rss(self) -> int:
        return self._process.memory_info().rss if self._process is not None else 0

    def cpu(self) -> float:
        return self._process.cpu_percent() if self._process is not None else 0.0

    async def run(self) -> None:
        worker = self.worker
        while not worker.closing:
            await asyncio.sleep(worker.heartbeat_interval)
            rss = self.rss()
            self.check_memory(rss)
            metrics = worker.metrics()
            metrics.update(memory=rss, cpu=self.cpu(), nthreads=worker.nthreads,
                           memory_limit=worker.memory_limit)
            worker.send_center(Heartbeat(metrics=metrics))

    def check_memory(self, rss: int) -> None:
        worker = self.worker
        limit = worker.memory_limit
        if not limit:
            return
        if rss > TERMINATE_FRACTION * limit:
            log.error("worker memory %d bytes is above %.0f%% of the limit %d: restarting",
                      rss, 100 * TERMINATE_FRACTION, limit)
            os._exit(75)  # the nanny restarts us; the center reschedules what ran here
        paused = rss > PAUSE_FRACTION * limit
        if paused != worker.state.paused:
            log.warning("worker memory %d bytes: %s", rss,
                        "pausing new work" if paused else "resuming work")
            worker._act(worker.state.set_paused(paused))
            worker.send_center(Heartbeat(metrics=worker.metrics()))
