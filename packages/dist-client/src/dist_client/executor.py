"""The Executor: submit functions to a dist cluster, hold futures, gather and scatter data.

A facade over the client's core (``core/``): the operations run there, on the I/O thread, and
each method here waits for one in the caller's thread. Its debugging methods are written in
``diagnostics_methods``, those of the state clients share in ``shared_state_methods``."""
from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import os
import ssl
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from dist_protocol import task_context
from dist_protocol.addresses import format_address

from .arguments import data_path, duration, given_timeout, local_cluster_shape
from . import current, worker_restarts
from .actors import actor_options
from .cluster import CenterAddress, ClusterLike, credentials
from .core import operations
from .core.client import ClientCore
from .errors import CENTER_RUNS_NO_USER_CODE
from .diagnostics_methods import ClusterDiagnostics
from .future import Future
from .held_futures import HeldFutures
from .local_options import NOT_GIVEN, LocalOptions
from .local_options import refuse as refuse_keywords
from .reprs import describe, describe_html
from .shared_state_methods import SharedState
from .scheduler_file import address_from_scheduler_file, check_scheduler_file
from .packing import futures_of
from .dask_annotate import call_options
from .core import plugins as plugin_ops
from .short_tracebacks import without_dist_frames
from .worker_functions import add_plugin, install_file, refuse_nanny, remove_plugin


class Executor(SharedState, ClusterDiagnostics, concurrent.futures.Executor):
    """A connection to a dist cluster.

    ``Executor("host:8787")`` connects to a running center; ``Executor()`` starts a local
    center and workers first (``pip install 'dist-client[local]'``) and stops them on close.
    It is a ``concurrent.futures.Executor`` for ``submit``/``shutdown`` (so
    ``loop.run_in_executor(e, ...)`` works); its ``map`` returns futures, as dask's does --
    ``get_executor()`` gives a strict ``concurrent.futures`` view whose ``map`` yields results.
    ``Executor(..., asynchronous=True)`` must be awaited and gives an ``AsyncExecutor``.
    """

    asynchronous = False  # its calls return values, not awaitables (AsyncExecutor's do)

    def __new__(cls, *args, asynchronous: bool = False, **kwargs):
        if asynchronous:
            from .asynchronous import AsyncExecutor
            return AsyncExecutor(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, address: str | tuple[str, int] | ClusterLike | None = None, *,
                 token: str | None = None,
                 token_file: str | None = None, name: str | None = None,
                 timeout: float = 10.0, tls_cert: str | None = None, tls_key: str | None = None,
                 tls_ca: str | None = None, n_workers: int | None = None,
                 threads_per_worker: int | None = None,
                 memory_limit: str | float | None = None, asynchronous: bool = False,
                 reconnect_timeout: float = 60.0, tls_context: ssl.SSLContext | None = None,
                 processes: bool | None = None, dashboard_address: Any = NOT_GIVEN,
                 silence_logs: Any = None, local_directory: str | None = None,
                 set_as_default: bool = True, scheduler_file: str | None = None,
                 direct_to_workers: bool | None = None, **unsupported: Any):
        """``processes``, ``dashboard_address``, ``silence_logs`` and ``local_directory``
        shape the local cluster started with no address, as ``LocalCluster``'s (see
        ``dist_client.local``). ``set_as_default=False``: this executor does not become the
        default one (``default_executor()``, what dask runs ``compute()`` on).
        ``scheduler_file``: connect to the center that ``dcenter --scheduler-file`` names in
        that file, waiting up to ``timeout`` seconds for the file to appear.
        ``direct_to_workers`` is dask's choice of path for data: the center holds none, so
        dist's always goes straight between the client and the workers, whatever is given
        (it is checked, and ``e.direct_to_workers`` is True)."""
        self._blocks: list[contextvars.Token] = []  # of the ``with`` blocks it is in
        refuse_keywords(unsupported, "Executor")
        timeout = duration("timeout", timeout)  # (as dask's, "30s" too)
        reconnect_timeout = duration("reconnect_timeout", reconnect_timeout)
        data_path("direct_to_workers", direct_to_workers)
        check_scheduler_file(address, scheduler_file)
        self.scheduler_file = scheduler_file  # the file read, or written (as dask's)
        if scheduler_file is not None:
            address = address_from_scheduler_file(scheduler_file, timeout)
        local = local_cluster_shape(address, LocalOptions(
            n_workers, threads_per_worker, memory_limit, processes, dashboard_address,
            silence_logs, local_directory))
        if isinstance(address, tuple):  # (host, port), as the original API took it
            host, port = address
            address = format_address(host, int(port))
        elif address is not None and not isinstance(address, str):
            # A cluster object: its address and credentials (it stays open after close()).
            address, carried = credentials(address)
            token = token or carried.get("token")
            tls_cert = tls_cert or carried.get("tls_cert")
            tls_key = tls_key or carried.get("tls_key")
            tls_ca = tls_ca or carried.get("tls_ca")
        self.core = ClientCore(address, token=token, token_file=token_file, name=name,
                               timeout=timeout, tls_cert=tls_cert, tls_key=tls_key,
                               tls_ca=tls_ca, reconnect_timeout=reconnect_timeout,
                               tls_context=tls_context)
        self.core.belongs_to(self)
        if address is None:
            try:  # started here, in the caller's thread (see local.py: the parent-death signal)
                self.core.start_local_cluster(local)
            except BaseException:
                self.core.abandon()
                raise
        self.core.start_blocking(set_as_default)
        self._default = set_as_default
        if set_as_default:
            current.register(self)

    @property
    def address(self) -> str:
        return self.core.address

    @property
    def scheduler(self) -> CenterAddress:
        """dask's handle on its scheduler, for ``e.scheduler.address``: the center's."""
        return CenterAddress(self.core.address)

    @property
    def token(self) -> str | None:
        return self.core.token

    @property
    def id(self) -> str:
        return self.core.id

    @property
    def status(self) -> str:
        return self.core.status

    @property
    def direct_to_workers(self) -> bool:
        """dask's: whether data goes between this client and the workers without passing
        through the scheduler. Always, with dist: the center holds no data."""
        return True

    @classmethod
    def current(cls, allow_global: bool = True) -> Executor:
        """The default executor (that of the innermost ``as_current()`` or ``with`` block,
        else the most recent running one), as dask's ``Client.current()``; with
        ``allow_global=False`` only that of a block. ``ValueError`` when there is none."""
        if allow_global:
            return current.default_executor()
        executor = current.made_current()
        if executor is None:
            raise ValueError("No clients found: no Executor is current in this thread "
                             "(Executor.current(allow_global=False) gives the one of an "
                             "enclosing 'with executor:' or 'with executor.as_current():' "
                             "block)")
        return executor

    def as_current(self) -> contextlib.AbstractContextManager[Executor]:
        """``with e.as_current():`` -- within the block, in this thread (or asyncio task),
        this executor is the default one (``Executor.current()``, what dask computes on,
        what primitives use), as dask's ``Client.as_current()``."""
        return current.preferred(self)

    def start(self) -> None:
        """dask's: start the client. An Executor is started when it is made, so this does
        nothing while it runs; a closed one cannot start again (make a new one)."""
        if self.core.status in ("closing", "closed"):
            raise RuntimeError(f"this Executor is {self.core.status} and cannot start again: "
                               "create a new Executor")

    @property
    def futures(self) -> HeldFutures:
        """The keys this client holds futures of, each with the client's state of it
        (``status``, ``exception``, ...), as dask's ``client.futures``: a live view, which
        keeps no key held."""
        return HeldFutures(self.core)

    @property
    def cluster(self) -> Any:
        """The local cluster ``Executor()`` started (None when connected to a running one)."""
        return self.core.cluster

    # -- submitting -----------------------------------------------------------------------------
    # Keyword options besides the call's own, as dask's Client.submit has: not the base class's
    # signature, but every call of the base class's form works.
    def submit(  # type: ignore[override]
            self, func, /, *args, key: Any = None, pure: bool = True, workers=None,
            priority: int = 0, retries: int = 0, allow_other_workers: bool = False,
            resources: dict | None = None, actor: bool = False, max_restarts: int = 0,
            fifo_timeout: str | float = "60s", **kwargs) -> Future:
        """Run ``func(*args, **kwargs)`` on the cluster; Futures in the arguments become their
        values there. Equal pure calls share one key and run once.

        ``fifo_timeout`` is dask's, for code written for it: dist runs tasks of equal
        priority strictly in the order they arrived, as dask does with ``fifo_timeout=0``,
        so it is checked and changes nothing.

        With ``actor=True``, ``func`` (a class) makes an object that stays on one worker: the
        future's result is an ``Actor`` handle whose method calls go straight to that worker
        (see actors.py). ``max_restarts`` makes it again elsewhere, its state lost, up to that
        many times if its worker dies.

        The keywords named here are dist's options; every other keyword goes to ``func``
        (``get_executor()`` passes every keyword to ``func``)."""
        duration("fifo_timeout", fifo_timeout)
        options = call_options(workers, priority, retries, allow_other_workers, resources)
        if actor_options(self.core, options, actor, max_restarts):
            pure = False  # every actor is an object of its own, as each call of a class is
        return self.core.submitter.submit_call(func, args, kwargs, key, pure, options)

    def map(  # type: ignore[override]
            self, func, *iterables: Iterable, key: str | list | None = None,
            pure: bool = True, workers=None, priority: int = 0, retries: int = 0,
            allow_other_workers: bool = False, resources: dict | None = None,
            batch_size: int | None = None, fifo_timeout: str | float = "100ms",
            timeout: float | None = None, chunksize: int = 1, **kwargs) -> list[Future]:
        """``submit(func, *args, **kwargs)`` for each ``args`` of ``zip(*iterables)``, sent to
        the center in messages of ``batch_size`` tasks (by default 1,000), as dask's
        ``batch_size``: the cluster starts on the first while the rest are prepared.
        ``fifo_timeout`` is checked and changes nothing, as with ``submit``. A keyword
        argument that pickles to 100 kB or more goes to the cluster once, as a task of its
        own whose result every task of the map reads, as dask's ``map`` does.

        ``timeout`` and ``chunksize`` are ``concurrent.futures``' keywords, not ``func``'s:
        every element is its own task (``chunksize`` is checked and otherwise ignored, as
        ``ThreadPoolExecutor`` does). This ``map`` returns futures at once, so ``timeout`` has
        nothing to bound here: wait on them with ``gather(..., timeout=)`` or ``wait``
        (``get_executor().map`` yields results and honours it)."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        duration("fifo_timeout", fifo_timeout)
        options = call_options(workers, priority, retries, allow_other_workers, resources)
        return self.core.submitter.submit_map(func, iterables, kwargs, key, pure, options,
                                              batch_size=batch_size)

    # -- debugging (see recreate.py) --------------------------------------------------------------
    def recreate_error_locally(self, future: Any) -> Any:
        """Run here, in this thread, the task where the error of ``future`` began (of the
        first erred future, given several or a persisted collection), its inputs fetched from
        the workers, as dask's: it raises the task's error again, so a debugger can step into
        the function (``pdb.pm()``, ``%debug``). A future whose input failed did not run:
        the input's task runs. The futures are waited for first; ``ValueError`` if none
        failed. Should the task not fail here, its value is returned."""
        from .recreate import erred_task
        return self.core.run(erred_task(self.core, future)).run()

    def recreate_task_locally(self, future: Any) -> Any:
        """Run the task of ``future`` here, in this thread, with its inputs fetched from the
        workers, and return its value, as dask's: to step into it with a debugger, or to
        profile it. Its inputs must be computed (it waits for them)."""
        from .recreate import task
        return self.core.run(task(self.core, future)).run()

    # -- data -----------------------------------------------------------------------------------
    def gather(self, futures: Any, errors: str = "raise", direct: bool | None = None,
               timeout: float | None = None) -> Any:
        """The values of ``futures`` (a Future, or lists/tuples/dicts/sets of them), fetched
        straight from the workers, one request per worker; ``errors="skip"`` leaves out those
        that failed; ``TimeoutError`` after ``timeout`` seconds (the futures go on). Of an
        iterator (a generator), an iterator of the values, each gathered as it is read.
        ``direct`` is dask's choice between the workers and the scheduler: the center holds
        no data, so values always come from the workers."""
        data_path("direct", direct)
        timeout = given_timeout("timeout", timeout)
        if isinstance(futures, Iterator):
            return self._gather_as_read(futures, errors, timeout)
        try:
            if isinstance(futures, Future):
                self.core.refuse_foreign([futures], "gather")
                return futures.result(timeout)
            known = operations.gather_here(self.core, futures, errors)
            if known is not operations.NOT_HERE:
                return known
            gathering = operations.gather(self.core, futures, errors, timeout)
            if task_context.current() is not None and operations.any_pending(futures):
                with task_context.slot_given_back():
                    return self.core.run(gathering)
            return self.core.run(gathering)
        except BaseException as exc:  # noqa: BLE001 -- raised again, with a shorter traceback
            raise exc.with_traceback(without_dist_frames(exc.__traceback__))  # noqa: B904

    def _gather_as_read(self, futures: Iterator, errors: str,
                        timeout: float | None) -> Iterator[Any]:
        """``gather`` of an iterator, as dask's: its values in order, each gathered as the
        iterator is read, so a stream of futures (submitted as it is read, or endless) flows
        through instead of being read whole first."""
        for future in futures:
            yield from self.gather([future], errors, timeout=timeout)

    def scatter(self, data: Any, workers=None, broadcast: bool = False,
                direct: bool | None = None, hash: bool = True,
                timeout: float | None = 30.0) -> Any:
        """Put local data on the workers; returns Futures (a list, dict or single one, as given).

        The client asks the center where to put each value and sends it to those workers
        directly (so ``direct``, dask's choice of path, changes nothing). ``workers`` limits
        where; ``broadcast=True`` puts a copy on every worker (of ``workers``). The arguments
        are in the order of dask's ``Client.scatter``.
        """
        data_path("direct", direct)
        return self.core.run(operations.scatter(self.core, data, broadcast, workers, hash,
                                                timeout))

    # -- cluster information and control --------------------------------------------------------
    def cancel(self, futures: Any, force: bool = False, reason: str | None = None,
               msg: str | None = None) -> None:
        """Stop work not yet started for these futures and release their keys; the futures
        are cancelled, finished ones too (their values are gone with the keys). As dask's,
        the tasks reading a key only this client holds, directly or not, are cancelled
        with it unless someone else holds them. It returns once the center has answered, as
        dask's does, with those futures cancelled too. Other clients holding the same keys
        keep them (their tasks go on), unless ``force=True``: then the keys, and every task
        that reads them, are cancelled for every client, dataset and ``fire_and_forget``
        holding them. ``reason`` and ``msg``, as dask's, go into the futures'
        ``CancelledError`` ("... was cancelled: reason", then ``msg`` on a line of its own)."""
        self.core.cancelling.cancel(futures, force, reason=reason, msg=msg)

    def retry(self, futures: Any) -> None:
        """Run again the tasks of these futures (also inside containers and persisted
        collections) that failed, with the failed inputs behind them, as dask's
        ``Client.retry``; their futures are pending until the tasks settle again."""
        self.core.cancelling.retry(futures)

    def versions(self, check: bool = False) -> dict[str, Any]:
        """What each process runs: ``{"client": env, "center": env, "workers": {address:
        env}}``, each env ``{"implementation", "python", "packages": {name: version}}`` (None
        for a process that did not say). ``check=True`` raises ``EnvironmentMismatch`` when a
        worker runs another Python minor version or a package version differs anywhere."""
        return self.core.run(operations.versions(self.core, check))

    def get_versions(self, check: bool = False, packages: Any = None) -> dict[str, Any]:
        """dask's name for ``versions``: the same, with the center under ``"scheduler"`` too,
        and the versions of ``packages`` (names of distributions) added to the client's and
        each worker's ``"packages"``."""
        return self.core.run(operations.versions_as_dask(self.core, check, packages))

    def wait_for_workers(self, n_workers: int = 1, timeout: float | None = None) -> None:
        """Block until at least ``n_workers`` workers have registered with the center."""
        self.core.run(operations.wait_for_workers(self.core, n_workers, timeout))

    def nthreads(self, workers: Any = None) -> dict[str, int]:
        """Threads per worker (of those ``workers`` names, as dask's), by address."""
        return self.core.run(operations.ncores(self.core, workers))

    ncores = nthreads  # the name of the original API (and of dask's before ``nthreads``)

    def scheduler_info(self, n_workers: int = -1) -> dict[str, Any]:
        """The center and its workers, in the shape of dask's ``Client.scheduler_info()``:
        ``{"type", "id", "address", "n_workers", "total_threads", "total_memory", "workers":
        {address: {"name", "host", "nthreads", "memory_limit", "status", "metrics", ...}}}``;
        ``n_workers``: the maps of only that many workers (-1: all), as dask's."""
        return self.core.run(operations.cluster_info(self.core, n_workers))

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard of the local cluster ``Executor()`` started; None otherwise (the
        center prints its own address at start)."""
        return getattr(self.core.cluster, "dashboard_link", None) or None

    def who_has(self, futures: Any = None) -> dict[Hashable, list[str]]:
        """Which workers hold each key (of ``futures``, or of every future this client holds)."""
        return self.core.run(operations.who_has(self.core, futures))

    def has_what(self, workers: Any = None) -> dict[str, list[Hashable]]:
        """The keys of this client's futures each worker holds (of those ``workers`` names,
        as dask's), by worker address."""
        return self.core.run(operations.has_what(self.core, workers))

    def processing(self, workers: Any = None) -> dict[str, list[Hashable]]:
        """The keys of the tasks each worker (of those ``workers`` names: addresses, names
        or hosts) is running now, by address, as dask's; the tasks of every client."""
        return self.core.run(operations.processing(self.core, workers))

    def write_scheduler_file(self, scheduler_file: str) -> None:
        """Write how to reach this executor's center into ``scheduler_file``, as
        ``dcenter --scheduler-file`` writes it (the address, never the token), for
        ``Executor(scheduler_file=)`` or ``dworker --scheduler-file`` elsewhere, as dask's.
        As dask's, ``ValueError`` if this executor has a scheduler file already (one it
        was given or wrote)."""
        from dist_protocol.scheduler_file import center_identity, write_scheduler_file
        if self.scheduler_file is not None:
            raise ValueError(f"this Executor's scheduler file is {self.scheduler_file!r} "
                             "already")
        started = self.scheduler_info(n_workers=0)["started"]
        write_scheduler_file(scheduler_file, center_identity(self.address, started=started))
        self.scheduler_file = scheduler_file

    def nbytes(self, keys: Any = None, summary: bool = True) -> dict[Hashable, int]:
        """The size in bytes of each result this client holds (of ``keys``, futures or keys)
        as the workers measured it, as dask's; ``summary``: summed by the name the keys
        start with (``inc`` of ``inc-<hash>``). Results of other clients are not counted."""
        from .sizes import sizes
        return sizes(self.core, keys, summary)

    def futures_of(self, collection: Any) -> list[Future]:
        """The futures in ``collection`` (lists, tuples, sets, dicts of them, or a persisted
        dask collection), as ``dist_client.futures_of``."""
        return futures_of(collection)

    def normalize_collection(self, collection: Any) -> Any:
        """``collection`` with the tasks whose keys this client holds (computed, or being
        computed) replaced by their futures, as dask's: computing it starts from those
        results rather than computing them again."""
        from .persist import normalize
        return normalize(self.core, collection)

    def replicate(self, futures: Any, n: int = 2, timeout: float = 60.0,
                  workers: Any = None) -> None:
        """Copy the futures' data onto ``n`` workers (or all of them, if fewer), so it
        survives the loss of a worker; returns when the copies exist. ``workers``
        (addresses, names or hosts), as dask's: the copies go on those workers only, and
        only copies there count (``n`` at most their number); otherwise the center picks
        the workers holding the fewest bytes."""
        self.core.run(operations.replicate(self.core, futures, n, timeout, workers))

    def rebalance(self, futures: Any = None, workers: list[str] | None = None) -> None:
        """Move data between workers until each holds about as many bytes, as dask's: the
        center picks the moves from the sizes it knows, and each worker fetches what it is
        given from its peer, whose copy is then freed. ``futures`` (once done): only their
        keys move (``KeyError`` names those that could not); ``workers`` (addresses or
        names): only between those. Keys that a task not yet finished reads stay where
        they are. Returns once the moves are done."""
        self.core.run(operations.rebalance(self.core, futures, workers))

    def retire_workers(self, workers: list[str] | None = None, close_workers: bool = True,
                       timeout: float = 300.0) -> dict[str, str]:
        """Retire workers (by address or name) gracefully, as dask's ``retire_workers``:
        they take no new tasks, give back those not started, and their data is copied to
        other workers before they leave (``close_workers``: they are also stopped). With no
        ``workers``, those the center says the current work does not need. Returns the
        workers retired; any that could not be give a warning saying why."""
        return self.core.run(operations.retire_workers(self.core, workers, close_workers,
                                                       timeout))

    def restart(self, timeout: float = 30.0, wait_for_workers: bool = True) -> None:
        """Forget every task and result, and restart every worker process. The futures of
        every client become cancelled; returns when as many workers as before have
        registered again, or raises ``TimeoutError`` if they have not within ``timeout``
        seconds (the restart happened all the same), as dask's. ``wait_for_workers=False``
        returns at once (then ``wait_for_workers(n)`` waits for as many as wanted). Files
        sent with ``upload_file`` stay: the restarted workers install them again."""
        self.core.run(operations.restart(self.core, duration("timeout", timeout),
                                         wait_for_workers))

    def span_keys(self, span_id: str) -> list[Any]:
        """The keys of the tasks this executor sent inside the ``span`` block of that id (or
        a span within it), in the order sent; the client's record (see ``spans``)."""
        return self.core.span_keys.keys(span_id)

    def restart_workers(self, workers: list[str], timeout: Any = None,
                        raise_for_error: bool = True) -> dict[str, str]:
        """Restart these workers (addresses or names) through their nannies, as dask's:
        returns ``{worker as given: "OK" | "timed out"}`` once each is registered again.
        ``TimeoutError`` if one is not back within ``timeout`` (seconds or ``"2min"``;
        default four times the connection timeout) unless ``raise_for_error=False``;
        ``ValueError`` for a worker without a nanny or unknown (nothing is restarted).
        Nothing is forgotten: what ran or was held only there is computed again."""
        return self.core.run(worker_restarts.restart_workers(self.core, workers, timeout,
                                                             raise_for_error))

    def run(self, func, *args, workers: list[str] | None = None, wait: bool = True,
            nanny: bool = False, on_error: str = "raise", **kwargs) -> dict[str, Any] | None:
        """``func(*args, **kwargs)`` once on every worker (or those named): {address: result}.
        Where it raises, ``on_error`` says what happens, as with dask: ``"raise"`` the error
        here, ``"return"`` the exception as that worker's result, ``"ignore"`` the worker
        left out. As with dask, a ``func`` that takes ``dask_worker`` gets the worker (its
        ``get_worker()`` view), an ``async def`` one is awaited there, and ``wait=False``
        returns None at once while the calls run."""
        refuse_nanny(nanny)
        results = self.core.run(operations.run_everywhere(self.core, func, args, kwargs,
                                                          workers, on_error, wait))
        return results if wait else None  # (dask's run(wait=False) returns None)

    def upload_file(self, path: str | os.PathLike, load: bool = True) -> dict[str, str]:
        """Send a file to every worker, as dask's: a .py, .zip, .egg or .whl becomes
        importable there, and a .py module is imported (again, if it was) unless
        ``load=False``. The center keeps the file (at most 100 files, 64 MiB in all; the
        same name replaces it) for the workers that join later or come back from a restart,
        which install it before they run a task. Returns where each worker now registered
        put it; ``ValueError`` if the center cannot keep it (nothing is sent to workers)."""
        return self.core.run(operations.upload_file(self.core, path, load, install_file))

    def register_plugin(self, plugin: Any, name: str | None = None,
                        idempotent: bool | None = None) -> dict[str, str]:
        """Set up a worker plugin on every worker, as dask's: ``plugin.setup(worker)`` runs on
        each worker now registered and on each that joins later (or comes back from a
        restart) before its first task, on a thread of its own, with ``worker`` the view
        ``get_worker()`` gives; ``plugin.teardown(worker)``, if it has one, runs when the
        plugin is unregistered and when the worker closes. ``name`` (default: the plugin's
        ``name`` attribute, else a new unique name) replaces a plugin of that name, unless
        ``idempotent`` (default: the plugin's ``idempotent`` attribute, as dask's), which then
        leaves it and returns ``{}``. The plugin is pickled here
        and unpickled on workers only. Returns {worker address: "OK"}; a setup that raises
        on a worker raises here (the plugin stays registered, as dask's), and a worker
        joining later whose setup fails logs the error and goes on. A plugin that does not
        unpickle on a worker raises ``PluginUnpicklingError`` and is not kept."""
        return self.core.run(plugin_ops.register_plugin(self.core, plugin, name, idempotent,
                                                        add_plugin, remove_plugin))

    def register_worker_plugin(self, plugin: Any, name: str | None = None,
                               idempotent: bool | None = None) -> dict[str, str]:
        """dask's older name of ``register_plugin``."""
        return self.register_plugin(plugin, name, idempotent)

    def unregister_worker_plugin(self, name: str) -> dict[str, str]:
        """Remove the worker plugin ``name``: each worker now registered runs its teardown,
        and workers joining later do not set it up. {worker address: "OK"}; ``ValueError``
        when no plugin has that name; a teardown's error raises here."""
        return self.core.run(plugin_ops.unregister_plugin(self.core, name, remove_plugin))

    # -- what the center does not do -------------------------------------------------------------
    def run_on_scheduler(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """dask's: not in dist, which never runs user code in the center (it does not even
        unpickle it). ``run`` runs a function on the workers; ``scheduler_info``, ``story``
        and ``get_task_stream`` tell what the center knows."""
        raise NotImplementedError(CENTER_RUNS_NO_USER_CODE.format("run_on_scheduler"))

    def register_scheduler_plugin(self, plugin: Any, name: str | None = None,
                                  idempotent: bool = False) -> None:
        """dask's: not in dist, whose center runs no user code (``register_plugin`` sets up
        worker plugins)."""
        raise NotImplementedError(CENTER_RUNS_NO_USER_CODE.format("a scheduler plugin"))

    def unregister_scheduler_plugin(self, name: str) -> None:
        """dask's: not in dist (see ``register_scheduler_plugin``)."""
        raise NotImplementedError(CENTER_RUNS_NO_USER_CODE.format("a scheduler plugin"))

    # -- dask -----------------------------------------------------------------------------------
    def get(self, dsk, keys, **kwargs) -> Any:
        """A dask scheduler: ``dask.compute(x, scheduler=e.get)`` runs the graph here.
        ``workers=``, ``resources=`` (for every task, or a dict of them by key), ``retries=``,
        ``priority=`` and ``allow_other_workers=`` are ``submit``'s options."""
        from .dask_graphs import get
        return get(self.core, dsk, keys, **kwargs)

    def __call__(self, dsk, keys, **kwargs) -> Any:
        """``x.compute(scheduler=e)``, ``dask.config.set(scheduler=e)``: dask takes a callable
        scheduler as its ``get``. Without this, dask would see a ``concurrent.futures`` executor
        and run its own scheduler here, each task a ``submit`` and every intermediate result
        sent back to this process and out again."""
        return self.get(dsk, keys, **kwargs)

    def compute(self, collections: Any, sync: bool = False, optimize_graph: bool = True,
                workers=None, allow_other_workers: bool = False, resources: dict | None = None,
                retries: int = 0, priority: int = 0, fifo_timeout: str | float = "100ms",
                traverse: bool = True, actors: Any = None) -> Any:
        """Futures for dask collections (a collection, or a list, tuple or set of them, then a
        list), computed on the cluster as one graph; ``result()`` gives what
        ``collection.compute()`` would. With ``traverse``, a list, tuple, set, dict or
        iterator (given, or in the list) becomes one future of it with its collections
        computed (as ``dask.delayed`` of it); anything else that is not a dask collection
        comes back as it is. ``sync=True`` gives the values instead of futures, and the
        other keywords are ``persist``'s, as with dask's ``Client.compute``."""
        from .dask_containers import compute_given
        duration("fifo_timeout", fifo_timeout)
        futures = compute_given(self.core, collections, optimize_graph, traverse,
                                workers=workers, allow_other_workers=allow_other_workers,
                                resources=resources, retries=retries, priority=priority,
                                actors=actors)
        return self.gather(futures) if sync else futures

    def as_dask_scheduler(self):
        """``with e.as_dask_scheduler(): x.compute()`` -- dask runs on this cluster inside."""
        from .dask_graphs import as_dask_scheduler
        return as_dask_scheduler(self.get)

    def persist(self, collections: Any, optimize_graph: bool = True, workers=None,
                allow_other_workers: bool = False, resources: dict | None = None,
                retries: int = 0, priority: int = 0,
                fifo_timeout: str | float = "60s", actors: Any = None) -> Any:
        """Dask collections computed on the cluster and kept there: each comes back backed by
        the futures of its results (a list for a list or tuple), as dask.distributed's.
        ``workers``/``resources`` restrict every task (``resources={"GPU": 1}``), or, as
        dicts by key (``resources={key: {"GPU": 1}}``), those keys';
        ``retries``/``priority``/``allow_other_workers`` as with ``submit``. ``actors``
        makes tasks actors, as dask's: ``True`` (every task), a collection or key, a list of
        them, or a dict of keys to bools; the tasks reading such a key get its ``Actor``."""
        from .persist import persist
        duration("fifo_timeout", fifo_timeout)
        return persist(self.core, collections, optimize_graph, workers=workers,
                       allow_other_workers=allow_other_workers, resources=resources,
                       retries=retries, priority=priority, actors=actors)

    # -- concurrent.futures -----------------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``concurrent.futures`` style: refuse new work; wait for the futures still held (or,
        with ``cancel_futures``, cancel those not started), keep their results readable, then
        close. ``wait=False`` returns at once and does the same in the background."""
        self.core.shutdown(wait, cancel_futures)

    def stop_accepting(self) -> None:
        """From now on ``submit``/``map`` raise ``RuntimeError``; results still arrive."""
        self.core.accepting = False

    def cancel_unstarted(self, futures: list[Future] | None = None) -> None:
        """Cancel the futures (default: every one held) whose tasks have not started;
        running ones go on."""
        self.core.cancelling.cancel_unstarted(futures)

    def settle_and_keep_results(self, budget: int) -> None:
        """Wait for every held future, then copy results (up to ``budget`` bytes in all) into
        the client, so they stay readable once the connection is closed."""
        self.core.keep_results(budget)

    def get_executor(self, max_workers: int | None = None,
                     **submit_options) -> concurrent.futures.Executor:
        """A strict ``concurrent.futures.Executor`` over this cluster: every call runs
        (``pure=False``), every keyword of ``submit``/``map`` goes to the function, and
        ``map`` yields results in order. dist's options (``workers``, ``priority``,
        ``retries``, ``resources``...) are given here, for every call of the view;
        ``max_workers`` limits how many of its calls are on the cluster at once (none:
        as many as the cluster runs)."""
        from .concurrent_view import ConcurrentView
        return ConcurrentView(self, submit_options, max_workers)

    # -- closing --------------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Close the connection (and the local cluster of ``Executor()``); futures not done
        become cancelled, as with dask. ``shutdown()`` waits for them instead. ``timeout``
        (seconds, as dask's) bounds the goodbye to the center; closing goes on after it."""
        self.core.close(None if timeout is None else duration("timeout", timeout))

    def __enter__(self) -> Executor:
        if self._default:  # the default one inside the block, as dask's client in its own
            self._blocks.append(current.enter(self))
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if self._blocks:
            current.leave(self._blocks.pop())
        if exc_type is None:
            self.shutdown(wait=True)  # as concurrent.futures: leaving the block waits
        else:
            self.close()  # the block failed: nobody waits for its work

    def __del__(self) -> None:
        try:
            if self.core.status == "running":
                self.core.close()
        except Exception:  # noqa: BLE001
            pass

    def _repr_html_(self) -> str:
        return describe_html("Executor", self.core)

    def __repr__(self) -> str:
        return describe("Executor", self.core)

    def __reduce__(self):
        # Reached when a function sent to the workers holds one (a method of an object that
        # keeps its executor in an attribute, say): name it rather than its innards.
        raise TypeError("an Executor cannot be pickled (a function or argument sent to the "
                        "workers holds one: a task reaches the cluster with get_executor())")

