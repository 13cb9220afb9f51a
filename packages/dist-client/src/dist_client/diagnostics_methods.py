"""The Executor's look inside the cluster, for debugging: a key's story, the task stream, the
running tasks' stacks, the processes' logs, a dump of the cluster's state. Each method asks
the center (or the workers through it) once, on the client's I/O thread."""
from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from typing import Any

from .arguments import duration
from . import task_stream
from . import worker_queries
from .core import operations
from .core.client import ClientCore
from .future import Future


class ClusterDiagnostics:
    """The ``Executor``'s debugging methods (a part of its class, apart for reading)."""

    core: ClientCore

    def story(self, *keys: Hashable | Future, timeout: float = 30.0) -> list[dict[str, Any]]:
        """What happened to these keys (or futures' keys), for debugging: the log entries of
        the center and of every worker, oldest first. Each entry is a dict with ``key``,
        ``start`` and ``finish`` (the states it left and entered), ``stimulus_id`` (the event
        that caused the move), ``time`` and ``worker`` (the worker's address, ``""`` for the
        center). The logs are bounded: a long-finished key may have no entries left."""
        return self.core.run(operations.story(self.core, keys, duration("timeout", timeout)))

    def get_task_stream(self, start: Any = None, stop: Any = None,
                        count: int | None = None) -> list[dict[str, Any]]:
        """The task runs the center recorded, oldest first, as dask's: dicts with ``key``,
        ``worker``, ``status`` (``"OK"``), ``nbytes`` and ``startstops`` (``[{"action":
        "compute", "start", "stop"}]``). ``start``/``stop``: runs started at or after,
        stopped at or before (seconds since the epoch, a datetime, or a duration ago such as
        "10s"); ``count``: only the newest that many. The center keeps the newest 5000.
        ``with dist_client.get_task_stream() as ts:`` collects those of a block."""
        wanted = task_stream.request(start, stop, count)
        return self.core.run(task_stream.fetch(self.core, wanted))[1]

    def dump_cluster_state(self, filename: str | os.PathLike = "dask-cluster-dump",
                           write_from_scheduler: bool | None = None,
                           exclude: Iterable[str] = ("run_spec",), format: str = "msgpack",
                           **storage_options: Any) -> None:
        """Write what the center and the workers report to ``filename`` + ``.msgpack.gz``
        (gzipped msgpack) or ``.yaml``, in dask's layout, for debugging: ``{"scheduler":
        {..., "tasks": {key: {"state", "who_has", "processing_on", ...}}}, "workers":
        {address: {..., "tasks": {key: {"state"}}}}, "versions": {"scheduler", "workers",
        "client"}}``. The tasks are those of this client's futures; a task's state is the
        last its story records (see ``story``). ``exclude``: field names left out. A URL
        (``s3://...``) is written with fsspec, given ``storage_options``. dask can write
        it from its scheduler; dist's client writes it, so ``write_from_scheduler=True``
        raises ``ValueError``."""
        from . import cluster_dump
        path = cluster_dump.target(filename, format, write_from_scheduler)
        state = self.core.run(cluster_dump.collect(self.core, tuple(exclude)))
        cluster_dump.write(state, path, format, storage_options)

    def call_stack(self, futures: Any = None, keys: Iterable[Hashable] | None = None
                   ) -> dict[str, dict[Hashable, list[str]]]:
        """The stacks of the tasks running now (of ``futures`` and ``keys``, or all), as
        dask's: {worker address: {key: the lines of its thread's stack, outermost first}};
        workers running none of them are left out."""
        names = worker_queries.key_names(futures, keys)
        return self.core.run(worker_queries.call_stack(self.core, names))

    def profile(self, key: Any = None, start: Any = None, stop: Any = None,
                workers: Any = None, merge_workers: bool = True, plot: bool = False,
                filename: str | None = None, server: bool = False,
                scheduler: bool = False) -> dict[str, Any]:
        """The tasks' call stacks as dask's profile tree (``count``, ``description``,
        ``children``), from one sample of the threads running tasks now -- the workers keep
        no history of samples, so ``start``/``stop`` have nothing to select from, and
        ``key``, ``workers`` and ``merge_workers=False`` are refused rather than ignored."""
        if key is not None or workers is not None or not merge_workers or plot or filename \
                or server or scheduler:
            raise NotImplementedError("profile() samples the running tasks' stacks once, over "
                                      "every worker: key=, workers=, merge_workers=False, "
                                      "plot=, filename=, server= and scheduler= are not "
                                      "supported; call_stack() gives each task's stack")
        return worker_queries.profile_of(self.call_stack())

    def get_worker_logs(self, n: int | None = None, workers: Any = None,
                        nanny: bool = False) -> dict[str, list[tuple[str, str]]]:
        """The newest ``n`` log lines (all kept, up to 10,000, when None) of each worker (of
        the addresses ``workers`` names), as dask's: {address: [(level, line), ...]},
        oldest first: what the worker process logs at its ``--log-level``, its tasks'
        ``logging`` included."""
        if nanny:
            raise ValueError("get_worker_logs(nanny=True): a dist nanny keeps no log to give; "
                             "the worker processes' lines come with nanny=False")
        named = None if workers is None else list(workers)
        return self.core.run(worker_queries.worker_logs(self.core, n, named))

    def get_scheduler_logs(self, n: int | None = None) -> list[tuple[str, str]]:
        """The center's newest ``n`` log lines (at its ``--log-level``), as dask's:
        [(level, line), ...], oldest first."""
        return self.core.run(worker_queries.center_logs(self.core, n))
