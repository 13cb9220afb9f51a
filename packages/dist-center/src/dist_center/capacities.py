"""Each worker's capacity for tasks without inputs, worked out once and kept.

``placement.capacity_with_margin`` says how many tasks a worker should hold: its threads,
its saturation and a margin for short tasks (from the average duration of tasks without
inputs). Placement asks it for every candidate worker of every such task, so the answer is
kept per worker until what it depends on changes: the margin, the saturation, the worker's
metrics (a heartbeat) or its seceded tasks (``forget``).
"""
from __future__ import annotations

from typing import Protocol

from . import placement
from .placement import MAX_MARGIN_PER_THREAD, SHORTEST
from .records import WorkerInfo


class Basis(Protocol):
    """What a capacity depends on besides the worker (the center's machine)."""

    @property
    def avg_duration(self) -> float: ...  # seconds, of tasks without inputs

    @property
    def worker_saturation(self) -> float: ...


class Capacities:
    __slots__ = ("_basis_of", "by_worker", "basis")

    def __init__(self, basis_of: Basis) -> None:
        self._basis_of = basis_of
        # Read by ``feeding``'s fill, which writes ``of`` out for its usual answer (a call
        # there cost each task of a map some 500 instructions): never changed outside.
        self.by_worker: dict[str, float] = {}
        # (average duration, saturation, margin) the kept capacities were worked out with
        self.basis: tuple[float, float, int] = (-1.0, 0.0, 0)

    def of(self, worker: WorkerInfo) -> float:
        """``placement.capacity`` of ``worker``, worked out again only when it may have
        changed."""
        avg = self._basis_of.avg_duration
        saturation = self._basis_of.worker_saturation
        basis = self.basis
        if avg != basis[0] or saturation != basis[1]:
            # (for tasks this short the margin is at its cap, however the average moves)
            margin = (basis[2] if basis[2] == MAX_MARGIN_PER_THREAD
                      and 0 < avg <= SHORTEST else placement.margin(avg))
            if margin != basis[2] or saturation != basis[1]:
                self.by_worker.clear()
            self.basis = (avg, saturation, margin)
        capacity = self.by_worker.get(worker.address)
        if capacity is None:
            capacity = self.by_worker[worker.address] = placement.capacity_with_margin(
                worker, self.basis[2], saturation)
        return capacity

    def forget(self, address: str) -> None:
        """The worker's metrics, threads or seceded tasks changed (or it left)."""
        self.by_worker.pop(address, None)
