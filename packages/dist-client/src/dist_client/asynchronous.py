"""The Executor for asyncio code: the same core as ``Executor``, awaited instead of waited for.

Each coroutine here awaits an operation that runs on the client's I/O loop (``core.call``):
the caller's event loop never blocks, and no thread stands in between.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from dist_protocol.addresses import format_address

from .arguments import data_path, duration, local_cluster_shape
from . import current
from . import datasets as dataset_ops
from . import event_log
from . import forward_logging as forwarding
from . import worker_queries, worker_restarts
from . import metadata as metadata_ops
from . import task_stream
from .actors import actor_options
from .cluster import CenterAddress, ClusterLike, credentials
from .core import operations
from .core import plugins as plugin_ops
from .core.client import ClientCore
from .core.waiters import settled_async
from .future import Future
from .held_futures import HeldFutures
from .packing import futures_of
from .local_options import NOT_GIVEN, LocalOptions
from .local_options import refuse as refuse_keywords
from .reprs import describe, describe_html
from .scheduler_file import address_from_scheduler_file_async, check_scheduler_file
from .dask_annotate import call_options
from .worker_functions import add_plugin, install_file, refuse_nanny, remove_plugin

# The keywords the client's core takes (``Executor``'s connection options).
CORE_OPTIONS = ("token", "token_file", "name", "timeout", "tls_cert", "tls_key", "tls_ca",
                "reconnect_timeout", "tls_context")
DEFAULT_TIMEOUT = 10.0  # seconds to connect, as Executor's


class AsyncExecutor:
    """``e = await AsyncExecutor(address)`` (or ``await Executor(address, asynchronous=True)``).

    ``submit``/``map`` return Futures you can ``await``; ``gather``, ``scatter``, ``close`` and
    the cluster calls are coroutines. The I/O runs on the client's own thread, so nothing
    here blocks the caller's event loop. It takes the arguments ``Executor`` takes.
    """

    asynchronous = True  # its calls are awaited (Executor's return values)

    def __init__(self, address: str | tuple[str, int] | ClusterLike | None = None, *,
                 n_workers: int | None = None, threads_per_worker: int | None = None,
                 memory_limit: str | float | None = None, asynchronous: bool = True,
                 processes: bool | None = None, dashboard_address: Any = NOT_GIVEN,
                 silence_logs: Any = None, local_directory: str | None = None,
                 set_as_default: bool = True, scheduler_file: str | None = None,
                 **options: Any):
        refuse_keywords({name: value for name, value in options.items()
                         if name not in CORE_OPTIONS}, "AsyncExecutor")
        check_scheduler_file(address, scheduler_file)
        self._scheduler_file = scheduler_file  # read once awaited, without blocking the loop
        local = local_cluster_shape(address or scheduler_file, LocalOptions(
            n_workers, threads_per_worker, memory_limit, processes, dashboard_address,
            silence_logs, local_directory))
        if isinstance(address, tuple):
            host, port = address
            address = format_address(host, int(port))
        elif address is not None and not isinstance(address, str):  # a cluster object
            address, carried = credentials(address)
            for option, value in carried.items():
                if not options.get(option):
                    options[option] = value
        for option in ("timeout", "reconnect_timeout"):  # (as dask's, "30s" too)
            if option in options:
                options[option] = duration(option, options[option])
        self._address = address
        self._local = local if address is None and scheduler_file is None else None
        self._options = options
        self._set_as_default = set_as_default
        self.core: ClientCore | None = None

    def __await__(self):
        return self._start().__await__()

    async def _start(self) -> AsyncExecutor:
        if self.core is None:
            if self._scheduler_file is not None:
                self._address = await address_from_scheduler_file_async(
                    self._scheduler_file, self._options.get("timeout", DEFAULT_TIMEOUT))
            core = ClientCore(self._address, **self._options)
            core.belongs_to(self)
            # A local cluster starts on the I/O thread, before it has anything else to do.
            await core.start_async(self._local, self._set_as_default)
            self.core = core
            if self._set_as_default:
                current.register(self)
        return self

    async def __aenter__(self) -> AsyncExecutor:
        return await self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    @property
    def _started(self) -> ClientCore:
        if self.core is None:
            raise RuntimeError("await the AsyncExecutor first: e = await AsyncExecutor(...)")
        return self.core

    @property
    def address(self) -> str:
        return self._started.address

    @property
    def scheduler(self) -> CenterAddress:
        """dask's handle on its scheduler, for ``e.scheduler.address``: the center's."""
        return CenterAddress(self.address)

    @property
    def status(self) -> str:
        return "not started" if self.core is None else self.core.status

    @property
    def id(self) -> str:
        return self._started.id

    @property
    def futures(self) -> HeldFutures:
        """As ``Executor.futures``."""
        return HeldFutures(self._started)

    @property
    def dashboard_link(self) -> str | None:
        """As ``Executor.dashboard_link``."""
        return getattr(self._started.cluster, "dashboard_link", None) or None

    def submit(self, func, /, *args, key: Any = None, pure: bool = True, workers=None,
               priority: int = 0, retries: int = 0, allow_other_workers: bool = False,
               resources: dict | None = None, actor: bool = False, max_restarts: int = 0,
               fifo_timeout: str | float = "60s", **kwargs) -> Future:
        """As ``Executor.submit``; the Future is awaitable."""
        duration("fifo_timeout", fifo_timeout)
        options = call_options(workers, priority, retries, allow_other_workers, resources)
        if actor_options(self._started, options, actor, max_restarts):
            pure = False
        return self._started.submitter.submit_call(func, args, kwargs, key, pure, options,
                                                   refresh=False)

    def map(self, func, *iterables, key: str | list | None = None, pure: bool = True,
            workers=None, priority: int = 0, retries: int = 0,
            allow_other_workers: bool = False, resources: dict | None = None,
            batch_size: int | None = None, fifo_timeout: str | float = "100ms",
            **kwargs) -> list[Future]:
        """As ``Executor.map``: a Future (awaitable) per element."""
        duration("fifo_timeout", fifo_timeout)
        options = call_options(workers, priority, retries, allow_other_workers, resources)
        return self._started.submitter.submit_map(func, iterables, kwargs, key, pure, options,
                                                  refresh=False, batch_size=batch_size)

    async def wait_done(self, futures: list[Future]) -> None:
        """Return once every one of ``futures`` is done (on this event loop)."""
        await settled_async([future.keystate for future in futures])

    async def gather(self, futures: Any, errors: str = "raise", direct: bool | None = None,
                     timeout: float | None = None) -> Any:
        """As ``Executor.gather``; ``timeout`` raises ``TimeoutError`` when the values are
        not all here in time (the futures go on)."""
        data_path("direct", direct)
        if isinstance(futures, Iterator):
            futures = list(futures)
        known = operations.gather_here(self._started, futures, errors)
        if known is not operations.NOT_HERE:
            return known
        core = self._started
        return await core.call(operations.gather(core, futures, errors, timeout))

    async def scatter(self, data: Any, workers=None, broadcast: bool = False,
                      direct: bool | None = None, hash: bool = True,
                      timeout: float | None = 30.0) -> Any:
        """As ``Executor.scatter``."""
        data_path("direct", direct)
        core = self._started
        return await core.call(operations.scatter(core, data, broadcast, workers, hash, timeout))

    async def cancel(self, futures: Any, force: bool = False, reason: str | None = None,
                     msg: str | None = None) -> None:
        """As ``Executor.cancel``: done once the center has answered."""
        core = self._started
        core.cancelling.cancel(futures, force, wait=False, reason=reason, msg=msg)
        keys = list(dict.fromkeys(future.name for future in futures_of(futures)))
        if keys:
            await asyncio.get_running_loop().run_in_executor(
                None, core.cancelling.until_heard, keys, core.timeout)

    async def retry(self, futures: Any) -> None:
        """As ``Executor.retry``."""
        self._started.cancelling.retry(futures)

    async def recreate_error_locally(self, future: Any) -> Any:
        """As ``Executor.recreate_error_locally``: the task runs in this thread (blocking the
        event loop while it runs, as a debugger would)."""
        from .recreate import erred_task
        core = self._started
        return (await core.call(erred_task(core, future))).run()

    async def recreate_task_locally(self, future: Any) -> Any:
        """As ``Executor.recreate_task_locally``."""
        from .recreate import task
        core = self._started
        return (await core.call(task(core, future))).run()

    @property
    def direct_to_workers(self) -> bool:
        """As ``Executor.direct_to_workers``: always True."""
        return True

    async def close(self, timeout: float | None = None) -> None:
        """As ``Executor.close``."""
        timeout = None if timeout is None else duration("timeout", timeout)
        if self.core is not None:
            await self.core.close_async(timeout)

    async def restart(self, timeout: float = 30.0, wait_for_workers: bool = True) -> None:
        """As ``Executor.restart``."""
        core = self._started
        await core.call(operations.restart(core, duration("timeout", timeout),
                                           wait_for_workers))

    def span_keys(self, span_id: str) -> list[Any]:
        """As ``Executor.span_keys`` (no round trip: not a coroutine)."""
        return self._started.span_keys.keys(span_id)

    async def restart_workers(self, workers: list[str], timeout: Any = None,
                              raise_for_error: bool = True) -> dict[str, str]:
        """As ``Executor.restart_workers``."""
        core = self._started
        return await core.call(worker_restarts.restart_workers(core, workers, timeout,
                                                               raise_for_error))

    async def retire_workers(self, workers: list[str] | None = None, close_workers: bool = True,
                             timeout: float = 300.0) -> dict[str, str]:
        core = self._started
        return await core.call(operations.retire_workers(core, workers, close_workers, timeout))

    async def rebalance(self, futures: Any = None, workers: list[str] | None = None) -> None:
        """As ``Executor.rebalance``."""
        core = self._started
        await core.call(operations.rebalance(core, futures, workers))

    async def replicate(self, futures: Any, n: int = 2, timeout: float = 60.0,
                        workers: Any = None) -> None:
        core = self._started
        await core.call(operations.replicate(core, futures, n, timeout, workers))

    async def run(self, func, *args, workers: list[str] | None = None, wait: bool = True,
                  nanny: bool = False, on_error: str = "raise",
                  **kwargs) -> dict[str, Any] | None:
        """As ``Executor.run``."""
        refuse_nanny(nanny)
        core = self._started
        results = await core.call(operations.run_everywhere(core, func, args, kwargs, workers,
                                                            on_error, wait))
        return results if wait else None  # (dask's run(wait=False) returns None)

    async def upload_file(self, path: str | os.PathLike, load: bool = True) -> dict[str, str]:
        """As ``Executor.upload_file``."""
        core = self._started
        return await core.call(operations.upload_file(core, path, load, install_file))

    async def register_plugin(self, plugin: Any, name: str | None = None,
                              idempotent: bool | None = None) -> dict[str, str]:
        """As ``Executor.register_plugin``."""
        core = self._started
        return await core.call(plugin_ops.register_plugin(core, plugin, name, idempotent,
                                                          add_plugin, remove_plugin))

    async def register_worker_plugin(self, plugin: Any, name: str | None = None,
                                     idempotent: bool | None = None) -> dict[str, str]:
        """dask's older name of ``register_plugin``."""
        return await self.register_plugin(plugin, name, idempotent)

    async def unregister_worker_plugin(self, name: str) -> dict[str, str]:
        """As ``Executor.unregister_worker_plugin``."""
        core = self._started
        return await core.call(plugin_ops.unregister_plugin(core, name, remove_plugin))

    async def who_has(self, futures: Any = None) -> dict[Hashable, list[str]]:
        core = self._started
        return await core.call(operations.who_has(core, futures))

    async def has_what(self, workers: Any = None) -> dict[str, list[Hashable]]:
        core = self._started
        return await core.call(operations.has_what(core, workers))

    async def processing(self, workers: Any = None) -> dict[str, list[Hashable]]:
        """As ``Executor.processing``."""
        core = self._started
        return await core.call(operations.processing(core, workers))

    async def nthreads(self, workers: Any = None) -> dict[str, int]:
        core = self._started
        return await core.call(operations.ncores(core, workers))

    ncores = nthreads

    async def scheduler_info(self, n_workers: int = -1) -> dict[str, Any]:
        core = self._started
        return await core.call(operations.cluster_info(core, n_workers))

    async def dump_cluster_state(self, filename: str | os.PathLike = "dask-cluster-dump",
                                 write_from_scheduler: bool | None = None,
                                 exclude: Iterable[str] = ("run_spec",),
                                 format: str = "msgpack", **storage_options: Any) -> None:
        """As ``Executor.dump_cluster_state``."""
        from . import cluster_dump
        core = self._started
        path = cluster_dump.target(filename, format, write_from_scheduler)
        state = await core.call(cluster_dump.collect(core, tuple(exclude)))
        await asyncio.to_thread(cluster_dump.write, state, path, format, storage_options)

    async def versions(self, check: bool = False) -> dict[str, Any]:
        core = self._started
        return await core.call(operations.versions(core, check))

    async def get_versions(self, check: bool = False, packages: Any = None) -> dict[str, Any]:
        """As ``Executor.get_versions``."""
        core = self._started
        return await core.call(operations.versions_as_dask(core, check, packages))

    async def wait_for_workers(self, n_workers: int = 1, timeout: float | None = None) -> None:
        core = self._started
        await core.call(operations.wait_for_workers(core, n_workers, timeout))

    async def story(self, *keys: Hashable | Future, timeout: float = 30.0) -> list[dict[str, Any]]:
        core = self._started
        return await core.call(operations.story(core, keys, duration("timeout", timeout)))

    async def get_task_stream(self, start: Any = None, stop: Any = None,
                              count: int | None = None) -> list[dict[str, Any]]:
        """As ``Executor.get_task_stream``."""
        core = self._started
        wanted = task_stream.request(start, stop, count)
        return (await core.call(task_stream.fetch(core, wanted)))[1]

    def compute(self, collections: Any, sync: bool = False, optimize_graph: bool = True,
                workers=None, allow_other_workers: bool = False, resources: dict | None = None,
                retries: int = 0, priority: int = 0, fifo_timeout: str | float = "100ms",
                traverse: bool = True, actors: Any = None) -> Any:
        """Futures (awaitable) for dask collections, as ``Executor.compute``; with
        ``sync=True`` a coroutine of their values."""
        from .dask_containers import compute_given
        duration("fifo_timeout", fifo_timeout)
        futures = compute_given(self._started, collections, optimize_graph, traverse,
                                workers=workers, allow_other_workers=allow_other_workers,
                                resources=resources, retries=retries, priority=priority,
                                actors=actors)
        return self.gather(futures) if sync else futures

    def persist(self, collections: Any, optimize_graph: bool = True, workers=None,
                allow_other_workers: bool = False, resources: dict | None = None,
                retries: int = 0, priority: int = 0,
                fifo_timeout: str | float = "60s", actors: Any = None) -> Any:
        """Dask collections kept on the cluster, as ``Executor.persist``."""
        from .persist import persist
        duration("fifo_timeout", fifo_timeout)
        return persist(self._started, collections, optimize_graph, workers=workers,
                       allow_other_workers=allow_other_workers, resources=resources,
                       retries=retries, priority=priority, actors=actors)

    async def publish_dataset(self, *args: Any, **kwargs: Any) -> None:
        core = self._started
        await core.call(dataset_ops.publish(core, args, kwargs))

    async def get_dataset(self, name: str, default: Any = dataset_ops.NO_DEFAULT) -> Any:
        core = self._started
        return await core.call(dataset_ops.get(core, name, default))

    async def list_datasets(self) -> tuple[Hashable, ...]:
        core = self._started
        return await core.call(dataset_ops.names(core))

    async def unpublish_dataset(self, name: str) -> None:
        core = self._started
        await core.call(dataset_ops.unpublish(core, name))

    async def set_metadata(self, key: Any, value: Any) -> None:
        """As ``Executor.set_metadata``."""
        await metadata_ops.set_metadata_async(self, key, value)

    async def get_metadata(self, key: Any, default: Any = metadata_ops.NO_DEFAULT) -> Any:
        """As ``Executor.get_metadata``."""
        return await metadata_ops.get_metadata_async(self, key, default)

    async def log_event(self, topic: str | Iterable[str], msg: Any) -> None:
        """As ``Executor.log_event``."""
        core = self._started
        await core.call(event_log.log_event(core, topic, msg))

    async def get_events(self, topic: str | None = None) -> Any:
        core = self._started
        return await core.call(event_log.get_events(core, topic))

    async def subscribe_topic(self, topic: str, handler: Any) -> None:
        core = self._started
        await core.call(event_log.subscribe(core, topic, handler))

    async def unsubscribe_topic(self, topic: str) -> None:
        core = self._started
        await core.call(event_log.unsubscribe(core, topic))

    async def forward_logging(self, logger_name: str | None = None,
                              level: int | str = logging.NOTSET) -> dict[str, str]:
        """As ``Executor.forward_logging``."""
        core = self._started
        return await core.call(forwarding.start(core, logger_name, level))

    async def unforward_logging(self, logger_name: str | None = None) -> dict[str, str]:
        """As ``Executor.unforward_logging``."""
        core = self._started
        return await core.call(forwarding.stop(core, logger_name))

    async def call_stack(self, futures: Any = None, keys: Iterable[Hashable] | None = None
                         ) -> dict[str, dict[Hashable, list[str]]]:
        """As ``Executor.call_stack``."""
        core = self._started
        names = worker_queries.key_names(futures, keys)
        return await core.call(worker_queries.call_stack(core, names))

    async def get_worker_logs(self, n: int | None = None, workers: Any = None
                              ) -> dict[str, list[tuple[str, str]]]:
        core = self._started
        named = None if workers is None else list(workers)
        return await core.call(worker_queries.worker_logs(core, n, named))

    async def get_scheduler_logs(self, n: int | None = None) -> list[tuple[str, str]]:
        core = self._started
        return await core.call(worker_queries.center_logs(core, n))

    @property
    def datasets(self) -> dataset_ops.AsyncDatasets:
        """The published datasets, as dask's asynchronous client has them: ``await
        datasets["x"]``, ``async for name in datasets``."""
        return dataset_ops.AsyncDatasets(self)

    def _repr_html_(self) -> str:
        if self.core is None:
            return "<b>AsyncExecutor</b>: not started"
        return describe_html("AsyncExecutor", self.core)

    def __repr__(self) -> str:
        if self.core is None:
            return "<AsyncExecutor: not started>"
        return describe("AsyncExecutor", self.core)

    def __reduce__(self):
        # Reached when a function sent to the workers holds one (a method of an object that
        # keeps its executor in an attribute, say): name it rather than its innards.
        raise TypeError("an AsyncExecutor cannot be pickled (a function or argument sent to the "
                        "workers holds one: a task reaches the cluster with get_executor())")

    def __del__(self) -> None:
        try:
            if self.core is not None and self.core.status == "running":
                self.core.close()
        except Exception:  # noqa: BLE001
            pass
