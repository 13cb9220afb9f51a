"""Clusters: what ``Executor(cluster)`` needs of one (``ClusterLike``), and ``Cluster``, the
base of the cluster managers (``Executor()``'s local cluster here; dist-deploy's SSH and SLURM
clusters), with ``scale``, ``adapt``, ``close`` and the context manager.

The base lives in dist-client so that ``Executor()``'s local cluster is one of them while
dist-client depends on no cluster manager: dist-deploy depends on dist-client, never the other
way round. ``Executor`` itself only reads ``address`` and, when present, ``token`` and
``security`` (a mapping with ``tls_cert``, ``tls_key``, ``tls_ca``).

A subclass says how to start and stop one worker (``start_worker``/``stop_worker``) and,
optionally, how to tell that one died on its own (``worker_gone``). Scaling down is graceful:
the center copies the data only the leaving workers hold to the others, then closes them
(``retire-workers``); the processes are then made sure to be gone.
"""
from __future__ import annotations

import itertools
import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .adaptive import Adaptive
from .center_link import CenterLink

log = logging.getLogger("dist.cluster")


@dataclass(frozen=True)
class CenterAddress:
    """What ``e.scheduler`` gives: dask code reads its scheduler's address there."""

    address: str


@runtime_checkable
class ClusterLike(Protocol):
    """A running cluster: where its center listens, and how to stop it."""

    address: str

    def close(self) -> None: ...


def credentials(cluster: object) -> tuple[str, dict[str, str]]:
    """A cluster object's address, and the connection options it carries (``token``,
    ``tls_cert``, ``tls_key``, ``tls_ca``: those it has); a clear error if it has no address."""
    address = getattr(cluster, "address", None)
    if not isinstance(address, str) or not address:
        raise TypeError(f"Executor takes an address ('host:port' or (host, port)) or a cluster "
                        f"object with an .address; got {type(cluster).__name__}")
    options: dict[str, str] = {}
    token = getattr(cluster, "token", None)
    if isinstance(token, str) and token:
        options["token"] = token
    security = getattr(cluster, "security", None)
    if isinstance(security, Mapping):
        for name in ("tls_cert", "tls_key", "tls_ca"):
            if security.get(name):
                options[name] = str(security[name])
    return address, options


class Cluster(ABC):
    """A center and the workers this object started. ``workers`` maps each worker's name (as
    the center knows it) to whatever the subclass keeps for it (a process, a job id)."""

    worker_prefix = "worker"

    def __init__(self, threads_per_worker: int = 1) -> None:
        self.address = ""
        self.token: str | None = None
        self.security: dict[str, str | None] | None = None
        self.threads_per_worker = threads_per_worker
        self.workers: dict[str, Any] = {}
        self.status = "starting"
        self._lock = threading.RLock()
        self._numbers = itertools.count()
        self._adaptive: Adaptive | None = None
        self._link: CenterLink | None = None

    # -- what a subclass provides ----------------------------------------------------------
    @abstractmethod
    def start_worker(self, name: str) -> Any:
        """Start a worker that registers as ``name``; returns what ``stop_worker`` needs.
        Returns at once: the worker registers when it is up."""

    @abstractmethod
    def stop_worker(self, name: str, handle: Any) -> None:
        """Make sure the worker is gone (it may have closed itself already)."""

    def worker_gone(self, name: str, handle: Any) -> bool:
        """Whether the worker ended on its own (a process exited, a job left the queue)."""
        return False

    def stop_center(self) -> None:
        """Stop the center this cluster started (if any)."""
        return None

    # -- scaling -----------------------------------------------------------------------------
    @property
    def link(self) -> CenterLink:
        if self._link is None:
            if not self.address:
                raise RuntimeError("the cluster's center is not running")
            self._link = CenterLink(self.address, self.token, self.security)
        return self._link

    @property
    def adaptive(self) -> Adaptive | None:
        """The adaptive scaling ``adapt()`` started, while it runs."""
        return self._adaptive

    @property
    def worker_names(self) -> list[str]:
        with self._lock:
            return list(self.workers)

    def new_worker_name(self) -> str:
        return f"{self.worker_prefix}-{next(self._numbers)}"

    def forget_dead(self) -> list[str]:
        """Drop the workers that ended on their own; their names."""
        with self._lock:
            dead = [name for name, handle in self.workers.items()
                    if self.worker_gone(name, handle)]
            for name in dead:
                log.warning("worker %s ended", name)
                self.stop_worker(name, self.workers.pop(name))
            return dead

    def scale(self, n: int) -> None:
        """Run ``n`` workers: start more, or retire the surplus gracefully (workers not yet
        registered first, then those the center would let go); a worker whose data no other
        worker can take is stopped anyway. Stops adaptive scaling."""
        if n < 0:
            raise ValueError(f"cannot scale to {n} workers")
        if self._adaptive is not None:
            self._adaptive.stop()
            self._adaptive = None
        with self._lock:
            self.forget_dead()
            surplus = len(self.workers) - n
            if surplus > 0:
                self.retire(self._choose_to_retire(surplus), force=True)
            else:
                self.scale_up(n)

    def scale_up(self, n: int) -> None:
        with self._lock:
            self._check_running()
            while len(self.workers) < n:
                name = self.new_worker_name()
                self.workers[name] = self.start_worker(name)

    def _choose_to_retire(self, count: int) -> list[str]:
        registered = {w["name"] for w in self.link.workers()}
        ours = self.worker_names
        chosen = [name for name in reversed(ours) if name not in registered][:count]
        if len(chosen) < count:
            advice = self.link.adaptive_target()
            for name in [*advice.retire, *reversed(ours)]:
                if len(chosen) >= count:
                    break
                if name in self.workers and name not in chosen:
                    chosen.append(name)
        return chosen

    def retire(self, names: list[str], force: bool = False) -> list[str]:
        """Retire these workers gracefully and make sure they are gone; the names stopped.
        A worker whose data has nowhere to go stays, with a warning -- or, with ``force``
        (what ``scale`` asks), is stopped anyway and its data is lost, as dask does."""
        with self._lock:
            names = [name for name in names if name in self.workers]
            registered = {w["name"] for w in self.link.workers()}
            stop = [name for name in names if name not in registered]
            known = [name for name in names if name in registered]
            if known:
                reply = self.link.retire_workers(known)
                stop += list(reply.retired.values())
                for name, why in reply.failed.items():
                    if why == "no such worker":  # it went meanwhile
                        stop.append(name)
                    elif force:
                        log.warning("worker %s stopped without retiring: %s", name, why)
                        stop.append(name)
                    else:
                        log.warning("worker %s was not retired: %s", name, why)
            for name in stop:
                if name in self.workers:
                    self.stop_worker(name, self.workers.pop(name))
            return stop

    def adapt(self, minimum: int = 0, maximum: float = math.inf, target_duration: float = 5.0,
              interval: float = 1.0, wait_count: int = 3) -> Adaptive:
        """Follow the center's target: up at once, down after ``wait_count`` recommendations
        in a row (``interval`` seconds apart), between ``minimum`` and ``maximum`` workers.
        ``scale()`` or another ``adapt()`` ends it."""
        if self._adaptive is not None:
            self._adaptive.stop()
        self._check_running()
        self._adaptive = Adaptive(self, minimum, maximum, target_duration, interval, wait_count)
        return self._adaptive

    # -- lifetime ----------------------------------------------------------------------------
    def _check_running(self) -> None:
        if self.status in ("closing", "closed"):
            raise RuntimeError(f"the cluster is {self.status}")

    def close(self) -> None:
        """Stop adaptive scaling, the workers, then the center."""
        if self.status in ("closing", "closed"):
            return
        self.status = "closing"
        if self._adaptive is not None:
            self._adaptive.stop()
            self._adaptive = None
        try:
            with self._lock:
                while self.workers:
                    name, handle = self.workers.popitem()
                    try:
                        self.stop_worker(name, handle)
                    except Exception as exc:  # noqa: BLE001 -- the others are stopped anyway
                        log.warning("could not stop worker %s: %s", name, exc)
            self.stop_center()
        finally:
            if self._link is not None:
                self._link.close()
                self._link = None
            self.status = "closed"

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.address or '(no center)'} "
                f"workers={len(self.workers)} {self.status}>")
