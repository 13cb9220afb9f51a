"""dask's plugin base classes, for code written against ``distributed.WorkerPlugin``,
``NannyPlugin`` and ``SchedulerPlugin``: the same methods with dask's signatures, each doing
nothing until overridden. What dist runs of them:

- ``WorkerPlugin``: ``setup(worker)`` on every worker, present and future (and after each
  restart), and ``teardown(worker)`` when it is unregistered or the worker closes, as
  ``Executor.register_plugin`` says; ``worker`` is the ``get_worker()`` view. ``transition``
  is never called: a worker's task transitions are not handed to user code (``story`` and
  the task stream tell them).
- ``NannyPlugin`` and ``SchedulerPlugin``: registering one raises ``NotImplementedError``
  saying why: dist's nanny and center run no user code (the center does not even unpickle
  it). The classes exist so that code defining such plugins imports and runs up to there.

``idempotent`` (class attribute, as dask's) is what ``register_plugin`` uses when its own
``idempotent`` is not given.
"""
from __future__ import annotations

from collections.abc import Awaitable
from typing import Any


class WorkerPlugin:
    """A plugin of every worker: override ``setup``/``teardown`` (they may be ``async``),
    then ``Executor.register_plugin(plugin)``."""

    idempotent: bool = False

    def setup(self, worker: Any) -> None | Awaitable[None]:
        """Run when the plugin is attached to a worker: at registration for the workers
        present, as a worker joins or comes back from a restart for the others."""

    def teardown(self, worker: Any) -> None | Awaitable[None]:
        """Run when the plugin is unregistered, or its worker closes."""

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        """dask's hook for each task transition on the worker; dist's workers never call
        it."""


class NannyPlugin:
    """dask's nanny plugin; dist's nanny runs no user code, so registering one raises
    ``NotImplementedError`` (a ``WorkerPlugin`` runs in each worker process, and again in
    each process a nanny restarts)."""

    idempotent: bool = False
    restart: bool = False

    def setup(self, nanny: Any) -> None | Awaitable[None]:
        """Run when the plugin is attached to a nanny (in dask)."""

    def teardown(self, nanny: Any) -> None | Awaitable[None]:
        """Run when the nanny closes (in dask)."""


class SchedulerPlugin:
    """dask's scheduler plugin; dist's center runs no user code, so registering one raises
    ``NotImplementedError``."""

    idempotent: bool = False

    async def start(self, scheduler: Any) -> None:
        """Run when the scheduler starts (in dask)."""

    async def before_close(self) -> None:
        """Run before the scheduler shuts down (in dask)."""

    async def close(self) -> None:
        """Run when the scheduler closes (in dask)."""

    def update_graph(self, scheduler: Any, *, client: str, keys: set[Any], tasks: list[Any],
                     annotations: dict[str, dict[Any, Any]],
                     priority: dict[Any, tuple[int | float, ...]], stimulus_id: str,
                     **kwargs: Any) -> None:
        """Run when tasks enter the scheduler (in dask)."""

    def restart(self, scheduler: Any) -> None:
        """Run when the scheduler restarts (in dask)."""

    def transition(self, key: Any, start: str, finish: str, *args: Any, stimulus_id: str,
                   **kwargs: Any) -> None:
        """Run whenever a task changes state (in dask)."""

    def add_worker(self, scheduler: Any, worker: str) -> None | Awaitable[None]:
        """Run when a worker joins (in dask)."""

    def remove_worker(self, scheduler: Any, worker: str, *, stimulus_id: str,
                      **kwargs: Any) -> None | Awaitable[None]:
        """Run when a worker leaves (in dask)."""

    def add_client(self, scheduler: Any, client: str) -> None:
        """Run when a client connects (in dask)."""

    def remove_client(self, scheduler: Any, client: str) -> None:
        """Run when a client disconnects (in dask)."""

    def valid_workers_downscaling(self, scheduler: Any, workers: list[Any]) -> list[Any]:
        """Which of ``workers`` may be removed when scaling down (in dask)."""
        return workers

    def log_event(self, topic: str, msg: Any) -> None:
        """Run when an event is logged (in dask)."""


__all__ = ["NannyPlugin", "SchedulerPlugin", "WorkerPlugin"]
