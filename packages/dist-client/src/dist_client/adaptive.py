"""Adaptive scaling: the center says what its work needs; a cluster manager follows, with
hysteresis so that a cluster does not start and stop workers on every wobble.

``AdaptivePolicy`` is the decision alone (no I/O, tested by transcripts): scale up at once to
the center's target (within ``minimum``/``maximum``); scale down only workers recommended for
retirement ``wait_count`` times in a row -- workers that never registered first, then those the
center names (idle, least data). ``Adaptive`` asks the center every ``interval`` seconds on a
thread of its own and carries the decisions out through the cluster.
"""
from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


class Scalable(Protocol):
    """What adaptive scaling needs of a cluster manager (``cluster.Cluster`` has it)."""

    threads_per_worker: int

    @property
    def link(self) -> Any: ...  # a CenterLink: adaptive_target(), workers()

    @property
    def worker_names(self) -> list[str]: ...

    def forget_dead(self) -> Any: ...

    def scale_up(self, n: int) -> Any: ...

    def retire(self, names: list[str]) -> Any: ...

log = logging.getLogger("dist.adaptive")


@dataclass(frozen=True)
class Decision:
    action: str  # "up", "down" or "same"
    n: int = 0  # the workers to have ("up")
    workers: list[str] = field(default_factory=list)  # names to retire ("down")


class AdaptivePolicy:
    def __init__(self, minimum: int = 0, maximum: float = math.inf, wait_count: int = 3):
        if minimum < 0 or maximum < minimum:
            raise ValueError(f"adapt needs 0 <= minimum <= maximum, not {minimum}, {maximum}")
        if wait_count < 1:
            raise ValueError(f"wait_count must be at least 1, not {wait_count}")
        self.minimum = minimum
        self.maximum = maximum
        self.wait_count = wait_count
        self.close_counts: dict[str, int] = {}  # name -> recommendations in a row to retire it

    def clamp(self, target: int) -> int:
        return int(max(self.minimum, min(self.maximum, target)))

    def recommend(self, target: int, planned: list[str], registered: set[str],
                  retire: list[str]) -> Decision:
        """``target``: workers the center wants; ``planned``: the cluster's workers, oldest
        first (started, registered or not); ``registered``: the names the center knows;
        ``retire``: the names the center would retire, first first."""
        target = self.clamp(target)
        current = len(planned)
        if target >= current:
            self.close_counts.clear()
            return Decision("up", n=target) if target > current else Decision("same", current)
        surplus = current - target
        not_arrived = [name for name in reversed(planned) if name not in registered]
        to_close = not_arrived[:surplus]
        for name in retire:
            if len(to_close) >= surplus:
                break
            if name in planned and name not in to_close:
                to_close.append(name)
        firm = []
        for name in to_close:
            self.close_counts[name] = self.close_counts.get(name, 0) + 1
            if self.close_counts[name] >= self.wait_count:
                firm.append(name)
        for name in list(self.close_counts):
            if name not in to_close:
                del self.close_counts[name]
        if firm:
            for name in firm:
                del self.close_counts[name]
            return Decision("down", workers=firm)
        return Decision("same", current)


class Adaptive:
    """Keeps ``cluster`` at the center's target until ``stop()`` (or the cluster closes)."""

    def __init__(self, cluster: Scalable, minimum: int = 0, maximum: float = math.inf,
                 target_duration: float = 5.0, interval: float = 1.0, wait_count: int = 3):
        self.cluster = cluster
        self.policy = AdaptivePolicy(minimum, maximum, wait_count)
        self.target_duration = target_duration
        self.interval = interval
        self.history: collections.deque[Decision] = collections.deque(maxlen=100)
        self.decided = threading.Condition()  # notified after every step, for watchers
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dist-adaptive", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return (f"<Adaptive minimum={self.policy.minimum} maximum={self.policy.maximum} "
                f"target_duration={self.target_duration}>")

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 -- a failed round is retried next interval
                log.warning("adaptive scaling: %s: %s", type(exc).__name__, exc)

    def step(self) -> Decision:
        cluster = self.cluster
        cluster.forget_dead()
        link = cluster.link
        advice = link.adaptive_target(self.target_duration)
        registered = {worker["name"] for worker in link.workers()}
        target = advice.target
        if advice.workers == 0 and advice.threads:  # the center does not know their size
            target = math.ceil(advice.threads / max(1, cluster.threads_per_worker))
        decision = self.policy.recommend(target, cluster.worker_names, registered,
                                         advice.retire)
        if not self._stopped.is_set():
            if decision.action == "up":
                cluster.scale_up(decision.n)
            elif decision.action == "down":
                cluster.retire(decision.workers)
        with self.decided:
            self.history.append(decision)
            self.decided.notify_all()
        return decision

    def stop(self) -> None:
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(30)
