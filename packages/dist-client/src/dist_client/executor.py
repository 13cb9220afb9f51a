"""The Executor: submit functions to a dist cluster, hold futures, gather and scatter data."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

from dist_protocol.comm import Comm, connect
from dist_protocol.messages import (ClusterInfo, Message, Replicate, Restart, Story, Submit,
                                    TaskSpec)
from dist_protocol.addresses import format_address
from dist_protocol.replies import PendingReplies
from dist_protocol.security import load_token, ssl_context
from dist_protocol.serialize import Payload, deserialize, serialize

from . import reconnect, shutdown, transfer
from .data_paths import DataPaths
from .environments import ClusterEnvironments
from .errors import (CenterLostError, ClusterError, EnvironmentMismatch)
from .future import Future, KeyState
from .state import ClientState, Fail, Finish, Recompute
from .keys import data_key, map_keys, task_key
from .loop import LoopThread
from .packing import collect_futures, without_missing
from . import waiting
from .tasks import TaskBuilder, warn_if_large
from .worker_functions import install_file

log = logging.getLogger("dist_client")

SUBMIT_CHUNK = 5_000  # tasks per submit message, so each batch stays well under frame limits


class Executor(concurrent.futures.Executor):
    """A connection to a dist cluster.

    ``Executor("host:8787")`` connects to a running center; ``Executor()`` starts a local
    center and workers first (``pip install 'dist-client[local]'``) and stops them on close.
    It is a ``concurrent.futures.Executor`` for ``submit``/``shutdown`` (so
    ``loop.run_in_executor(e, ...)`` works); its ``map`` returns futures, as dask's does --
    ``get_executor()`` gives a strict ``concurrent.futures`` view whose ``map`` yields results.
    ``Executor(..., asynchronous=True)`` must be awaited and gives an ``AsyncExecutor``.
    """

    def __new__(cls, *args, asynchronous: bool = False, **kwargs):
        if asynchronous:
            from .asynchronous import AsyncExecutor
            return AsyncExecutor(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, address: str | tuple[str, int] | None = None, *, token: str | None = None,
                 token_file: str | None = None, name: str | None = None,
                 timeout: float = 10.0, tls_cert: str | None = None, tls_key: str | None = None,
                 tls_ca: str | None = None, n_workers: int | None = None,
                 threads_per_worker: int | None = None, asynchronous: bool = False,
                 reconnect_timeout: float = 60.0):
        self.cluster = None
        if address is None:
            from .local import LocalCluster
            self.cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker)
            address, token = self.cluster.address, self.cluster.token
        elif isinstance(address, tuple):  # (host, port), as the original API took it
            host, port = address
            address = format_address(host, int(port))
        self.address = address
        self.token = load_token(token, token_file)
        self.id = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.status = "connecting"
        self._ssl = ssl_context(False, tls_cert, tls_key, tls_ca)
        # Every decision about keys and what the center is told is the state's; this lock
        # serialises the threads (user threads, __del__, the I/O thread) that feed it.
        self._lock = threading.RLock()
        self._state = ClientState()
        self._flush_scheduled = False
        self._replies = PendingReplies()  # requests to the center awaiting their reply
        self._tasks = TaskBuilder()
        self._accepting = True  # False once shut down: new work is refused, results still arrive
        self._io = LoopThread()
        self._workers = transfer.WorkerConnections(self.token, self._ssl, self.id)
        self._center: Comm | None = None
        self._timeout = timeout
        # After losing the center, how long to keep trying to reconnect (0: never).
        self._reconnect_timeout = reconnect_timeout
        self._connected = threading.Event()  # set while running: submits wait on a reconnect
        self._envs = ClusterEnvironments()
        self._data = DataPaths(address, self._ask, lambda: self._center,
                               lambda key: self._state.states.get(key), self._workers,
                               self._envs)
        # The workers as the center last listed them: what repr shows, without asking again.
        self._workers_seen: list[dict] = []
        try:
            self._center = self._io.run(self._connect(timeout))
            self._envs.center = self._center.peer_environment
            self._cluster_info()  # what the workers run: refuse a cluster pickles cannot reach
            self._envs.check_connect()
        except BaseException:
            if self._center is not None:
                self._io.run(self._close_async(), timeout=5)
            self._io.stop()
            if self.cluster is not None:
                self.cluster.close()
            raise
        self.status = "running"
        self._connected.set()
        shutdown.track(self)

    # -- connection ---------------------------------------------------------------------------
    async def _connect(self, timeout: float) -> Comm:
        try:
            comm = await connect(self.address, role="client", token=self.token, name=self.id,
                                 ssl_context=self._ssl, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the center at {self.address}: {exc}") from None
        comm.set_handler(self._on_center_messages)
        comm.on_close(self._on_center_lost)
        return comm

    def _on_center_messages(self, messages: list[Message]) -> None:
        with self._lock:
            orders = self._state.center_sent(messages)
        for order in orders:
            if isinstance(order, Finish):
                state, msg = order.state, order.message
                state.finish(msg.nbytes, msg.type, msg.workers, msg.value)
                waiting = state.prefetch_waiter()
                if waiting is not None:
                    self._start_prefetch(state, waiting, msg.workers or [], msg.value)
            elif isinstance(order, Fail):
                order.state.fail(order.exception, order.traceback, order.status)
            elif isinstance(order, Recompute):
                order.state.recomputing()
            else:
                self._replies.received(order.message)

    def _start_prefetch(self, state: KeyState, target: concurrent.futures.Future,
                        workers: list[str], small_value: Payload | None = None) -> None:
        if small_value is not None:
            try:
                value = deserialize(small_value)
                if not target.done():
                    target.set_result(value)
                return
            except BaseException as exc:  # noqa: BLE001 -- user code (a __setstate__) ran
                # here, on the I/O thread: whatever it raised belongs to the future, and the
                # connection must survive it.
                if not target.done():
                    target.set_exception(exc)
                return

        async def fetch() -> None:
            try:
                value = await self._data.value_from(state.key, workers)
                if not target.done():
                    target.set_result(value)
            except BaseException as exc:  # noqa: BLE001 -- handed to the waiting thread
                if not target.done():
                    target.set_exception(exc)

        self._io.loop.create_task(fetch())

    def _on_center_lost(self, comm: Comm) -> None:
        if self.status != "running" or comm is not self._center:
            return  # closing, or already handled (a connection is lost once)
        why = f"lost the connection to the center at {self.address}" \
            + (f": {comm.close_reason}" if comm.close_reason else "")
        reconnecting = self._reconnect_timeout > 0
        self.status = "reconnecting" if reconnecting else "center-lost"
        self._connected.clear()
        # Work in flight is gone with the center's state: its futures fail now, rather than
        # after the reconnection, so nobody waits for results that cannot come.
        error = CenterLostError(why + ("; the executor is reconnecting: submit the work again"
                                       if reconnecting else ""))
        with self._lock:
            fails, done = self._state.center_lost(error)
        for fail in fails:
            fail.state.fail(fail.exception, fail.traceback, fail.status)
        self._replies.fail(error)
        if reconnecting:
            self._io.loop.create_task(self._reconnect(done, why))

    async def _reconnect(self, held: list[str], why: str) -> None:
        try:
            comm = await reconnect.until_connected(lambda: self._connect(self._timeout),
                                                   self._reconnect_timeout, self.address)
        except Exception as exc:  # noqa: BLE001 -- given up: as if it never reconnected
            if self.status == "reconnecting":
                self.status = "center-lost"
                log.warning("gave up reconnecting: %s: %s", type(exc).__name__, exc)
            return
        if self.status != "reconnecting":  # closed meanwhile
            comm.close("client closing")
            return
        self._center = comm
        self._envs.center = comm.peer_environment
        self.status = "running"
        self._connected.set()
        self._flush_outbox()
        # What this client held: a restarted center starts empty, so a key it does not know
        # is lost (data that it still finds on a worker stays usable).
        try:
            who_has = await self._data.who_has(held) if held else {}
        except ClusterError:
            return
        for key in held:
            state = self._state.states.get(key)
            if state is not None and state.status == "finished" and not who_has.get(key):
                state.fail(CenterLostError(
                    f"{key}: {why}, and the center reconnected to does not know it (a "
                    "restarted center starts empty); submit it again"), status="lost")

    def _not_running(self) -> ClusterError:
        if self.status in ("closing", "closed"):
            return shutdown.refused(self)
        return ClusterError(f"this executor is {self.status}; results cannot arrive")

    def _run(self, coro, timeout: float | None = None) -> Any:
        """Run ``coro`` on the I/O thread; a clear error if the executor is closed."""
        if self.status in ("closing", "closed"):
            coro.close()
            raise self._not_running()
        return self._io.run(coro, timeout)

    def _send(self, *messages: Message) -> None:
        """Queue messages for the center, in order with the releases (from any thread)."""
        if self.status == "reconnecting" and not self._io.in_loop_thread:
            self._connected.wait(self._timeout)
        if self.status != "running" or self._center is None:
            raise self._not_running()
        with self._lock:
            if self._state.queue(*messages):
                self._schedule_flush()

    async def _ask(self, make: Callable[[int], Message]) -> Any:
        """Send a request to the center and wait for its reply (on the I/O thread)."""
        if self._center is None or self._center.is_closed:
            raise ClusterError(f"no connection to the center at {self.address}")
        return await self._replies.request(self._center, make)

    # -- reference counting (called from any thread, also from __del__) -----------------------
    def _hold(self, key: str, state: KeyState | None = None) -> KeyState:
        with self._lock:
            return self._state.hold(key, state)

    def _unhold(self, key: str) -> None:
        try:
            with self._lock:
                if self._state.unhold(key, release=self.status == "running"):
                    self._schedule_flush()
        except RuntimeError:
            pass  # the interpreter or the I/O loop is shutting down

    def _schedule_flush(self) -> None:
        """With the lock held: make sure the I/O thread sends the outbox soon."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._io.call(self._flush_outbox)

    def _flush_outbox(self) -> None:
        with self._lock:
            messages = self._state.take_outbox()
            self._flush_scheduled = False
        if self._center is None or self._center.is_closed:
            if self.status == "reconnecting":  # sent once connected again, in order
                with self._lock:
                    self._state.put_back(messages)
            return
        if messages:
            self._center.send(*messages)

    # -- submitting -----------------------------------------------------------------------------
    def _function_payload(self, func: Any) -> Payload:
        return self._tasks.function_payload(func)

    def _task(self, key: str, function: Payload, args: tuple, kwargs: dict, options: dict,
              func: Any = None) -> TaskSpec:
        return self._tasks.build(key, function, args, kwargs, options, func,
                                 pickled_with=self._envs.tag)

    @staticmethod
    def _options(workers, priority, retries, allow_other_workers, resources) -> dict:
        return TaskBuilder.options(workers, priority, retries, allow_other_workers, resources)

    # Keyword options besides the call's own, as dask's Client.submit has: not the base class's
    # signature, but every call of the base class's form works.
    def submit(  # type: ignore[override]
            self, func, /, *args, key: str | None = None, pure: bool = True, workers=None,
            priority: int = 0, retries: int = 0, allow_other_workers: bool = False,
            resources: dict | None = None, **kwargs) -> Future:
        """Run ``func(*args, **kwargs)`` on the cluster; Futures in the arguments become their
        values there. Equal pure calls share one key and run once.

        The keywords named here are dist's options; every other keyword goes to ``func``
        (``get_executor()`` passes every keyword to ``func``)."""
        options = self._options(workers, priority, retries, allow_other_workers, resources)
        return self._submit_call(func, args, kwargs, key, pure, options)

    def _submit_call(self, func, args: tuple, kwargs: dict, key: str | None, pure: bool,
                     options: dict, stacklevel: int = 2) -> Future:
        if not callable(func):
            raise TypeError(f"submit needs a callable, got {type(func).__name__}")
        key = key or task_key(func, args, kwargs, pure)
        return self._submit_many(func, [(key, args)], kwargs, options, stacklevel + 1)[0]

    def map(  # type: ignore[override]
            self, func, *iterables: Iterable, key: str | list[str] | None = None,
            pure: bool = True, workers=None, priority: int = 0, retries: int = 0,
            allow_other_workers: bool = False, resources: dict | None = None,
            timeout: float | None = None, chunksize: int = 1, **kwargs) -> list[Future]:
        """``submit(func, *args, **kwargs)`` for each ``args`` of ``zip(*iterables)``, in one
        message to the center.

        ``timeout`` and ``chunksize`` are ``concurrent.futures``' keywords, not ``func``'s:
        every element is its own task (``chunksize`` is checked and otherwise ignored, as
        ``ThreadPoolExecutor`` does). This ``map`` returns futures at once, so ``timeout`` has
        nothing to bound here: wait on them with ``gather(..., timeout=)`` or ``wait``
        (``get_executor().map`` yields results and honours it)."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        options = self._options(workers, priority, retries, allow_other_workers, resources)
        return self._map_calls(func, iterables, kwargs, key, pure, options)

    def _map_calls(self, func, iterables: tuple, kwargs: dict, key: str | list[str] | None,
                   pure: bool, options: dict, stacklevel: int = 2) -> list[Future]:
        if not callable(func):
            raise TypeError(f"map needs a callable, got {type(func).__name__}")
        if not iterables:
            return []
        argsets = list(zip(*iterables))
        keys = map_keys(func, argsets, kwargs, key, pure)
        return self._submit_many(func, list(zip(keys, argsets)), kwargs, options, stacklevel + 1)

    def _submit_many(self, func, calls: list[tuple[str, tuple]], kwargs: dict,
                     options: dict, stacklevel: int = 2) -> list[Future]:
        """Futures for ``calls``; new keys go to the center in chunks as they are built, so
        the cluster starts on the first tasks of a long map while the rest are prepared."""
        if not self._accepting:
            raise shutdown.refused(self)
        if self.status == "reconnecting" and not self._io.in_loop_thread:
            self._connected.wait(self._timeout)  # new work goes to the center reconnected to
        if self.status != "running":
            raise self._not_running()
        self._check_pickled_code(options)
        function = self._function_payload(func)
        futures = []
        warned = False
        for start in range(0, len(calls), SUBMIT_CHUNK):
            tasks = []
            chunk = calls[start:start + SUBMIT_CHUNK]
            with self._lock:
                new = set(self._state.keys_to_submit(key for key, _ in chunk))
                for key, args in chunk:
                    if key in new:
                        new.discard(key)  # a key twice in one map is one task
                        tasks.append(self._task(key, function, args, kwargs, options, func))
                    futures.append(Future(key, self))
                if tasks:
                    self._send(Submit(tasks=tasks, small_values=True))
            if tasks and not warned:
                warn_if_large(func, tasks, stacklevel + 1)
                warned = True
        return futures

    # -- gathering ------------------------------------------------------------------------------
    def gather(self, futures: Any, errors: str = "raise", timeout: float | None = None) -> Any:
        """The values of ``futures`` (a Future, or lists/tuples/dicts/sets of them), fetched
        straight from the workers, one request per worker."""
        if isinstance(futures, Future):
            return futures.result(timeout)
        if isinstance(futures, Iterator):
            futures = list(futures)
        found: list[Future] = []
        collect_futures(futures, found)
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = found
        while waiting:
            for future in waiting:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not future._keystate.wait(left):
                    raise TimeoutError(f"{future.key} not done within {timeout} s")
            # A result lost with its worker meanwhile is pending again while it is recomputed.
            waiting = [f for f in found if f.status == "pending"]
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        bad = [f for f in found if f.status != "finished"]
        if bad and errors == "raise":
            raise bad[0]._keystate.failure
        keys = list(dict.fromkeys(f.key for f in found if f.status == "finished"))
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        values = self._gather_keys(keys, timeout=left, skip=errors == "skip") if keys else {}
        return without_missing(futures, values)

    def _gather_keys(self, keys: list[str], timeout: float | None = None, skip: bool = False
                     ) -> dict[str, Any]:
        """The values of ``keys``; with ``skip``, keys that err or are lost meanwhile (a
        recomputation that failed, say) are left out instead of raising."""
        held: dict[str, Payload] = {}  # small values, and results kept after a shutdown
        remote = []
        for key in keys:
            state = self._state.states.get(key)
            if state is not None and state.small_value is not None:
                held[key] = state.small_value
            else:
                remote.append(key)
        values = transfer.load(held)
        if remote:
            values.update(self._run(self._gather_keys_async(remote, True, skip), timeout))
        return values

    async def _gather_keys_async(self, keys: list[str], many: bool = False,
                                 skip: bool = False) -> Any:
        if not self._io.in_loop_thread:  # awaited from the user's own event loop
            if self.status in ("closing", "closed"):
                raise self._not_running()
            future = asyncio.run_coroutine_threadsafe(
                self._gather_keys_async(keys, True, skip), self._io.loop)
            values = await asyncio.wrap_future(future)
            return values if many else values[keys[0]]
        values = await self._data.values(keys, skip)
        return values if many else values[keys[0]]

    # -- scattering -----------------------------------------------------------------------------
    def scatter(self, data: Any, broadcast: bool = False, workers=None, hash: bool = True,
                timeout: float | None = 30.0) -> Any:
        """Put local data on the workers; returns Futures (a list, dict or single one, as given).

        The client asks the center where to put each value and sends it to those workers
        directly. ``broadcast=True`` puts a copy on every worker.
        """
        if isinstance(data, dict):
            items = list(data.items())
        elif isinstance(data, (list, tuple, set, frozenset, Iterator)):
            items = [(data_key(v, hash), v) for v in data]
        else:
            items = [(data_key(data, hash), data)]
        payloads = {key: serialize(value) for key, value in items}
        if isinstance(workers, str):
            workers = [workers]
        futures = {key: Future(key, self) for key, _ in items}
        stored = self._run(self._data.scatter(payloads, broadcast, workers, timeout))
        for key, addresses in stored.items():
            state = futures[key]._keystate
            if state.status != "finished":  # pending, or lost/cancelled in an earlier life
                state.finish(payloads[key].nbytes, "", addresses)
        if isinstance(data, dict):
            return {key: futures[key] for key, _ in items}
        if isinstance(data, (list, tuple, set, frozenset, Iterator)):
            out = [futures[key] for key, _ in items]
            return tuple(out) if isinstance(data, tuple) else out
        return futures[items[0][0]]

    # -- cluster information and control --------------------------------------------------------
    def cancel(self, futures: Any) -> None:
        """Stop work not yet started for these futures and release their keys."""
        found: list[Future] = []
        collect_futures(futures if not isinstance(futures, Future) else [futures], found)
        keys = list(dict.fromkeys(f.key for f in found))
        for future in found:
            if not future.done():
                future._keystate.fail(CancelledError(f"{future.key} was cancelled"),
                                   status="cancelled")
        if keys:
            self._send_cancel(keys)

    def _send_cancel(self, keys: list[str], pending_only: bool = False) -> None:
        if self.status == "reconnecting" and not self._io.in_loop_thread:
            self._connected.wait(self._timeout)
        if self.status != "running" or self._center is None:
            raise self._not_running()
        with self._lock:
            if self._state.cancel(keys, pending_only):
                self._schedule_flush()

    def _cluster_info(self) -> list[dict]:
        workers = self._run(self._ask(lambda i: ClusterInfo(id=i))).workers
        self._workers_seen = workers
        self._envs.update(workers, time.monotonic())
        differences = self._envs.new_package_differences()
        if differences:
            warnings.warn(differences, UserWarning, stacklevel=3)
        return workers

    def versions(self, check: bool = False) -> dict[str, Any]:
        """What each process runs: ``{"client": env, "center": env, "workers": {address:
        env}}``, each env ``{"implementation", "python", "packages": {name: version}}`` (None
        for a process that did not say). ``check=True`` raises ``EnvironmentMismatch`` when a
        worker runs another Python minor version or a package version differs anywhere."""
        self._cluster_info()
        if check:
            problems = self._envs.mismatches()
            if problems:
                raise EnvironmentMismatch("the cluster's versions differ: " + "; ".join(problems))
        return self._envs.versions()

    def _check_pickled_code(self, options: dict) -> None:
        """Before pickled code is sent: no worker it may land on runs another Python. The
        view of the workers is refreshed when older than a second (one round trip)."""
        if self.status != "running" or self._center is None:
            raise ClusterError(f"this executor is {self.status}; results cannot arrive")
        if self._envs.stale(time.monotonic()):
            self._cluster_info()
        self._envs.check_submit(options["workers"], options["allow_other_workers"])

    def wait_for_workers(self, n_workers: int = 1, timeout: float | None = None) -> None:
        """Block until at least ``n_workers`` workers have registered with the center."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while len(self._cluster_info()) < n_workers:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"fewer than {n_workers} workers after {timeout} s")
            time.sleep(delay)
            delay = min(2 * delay, 0.25)

    def ncores(self) -> dict[str, int]:
        """Threads per worker, by address."""
        return {w["address"]: w["nthreads"] for w in self._cluster_info()}

    def who_has(self, futures: Any = None) -> dict[str, list[str]]:
        """Which workers hold each key (of ``futures``, or of every future this client holds)."""
        if futures is None:
            with self._lock:
                keys = self._state.held()
        else:
            found: list[Future] = []
            collect_futures(futures if not isinstance(futures, Future) else [futures], found)
            keys = [f.key for f in found]
        return self._run(self._data.who_has(keys))

    def has_what(self) -> dict[str, list[str]]:
        """The keys of this client's futures each worker holds, by worker address."""
        out: dict[str, list[str]] = {w["address"]: [] for w in self._cluster_info()}
        for key, addresses in self.who_has().items():
            for address in addresses:
                out.setdefault(address, []).append(key)
        return out

    def replicate(self, futures: Any, n: int = 2, timeout: float = 60.0) -> None:
        """Copy the futures' data onto ``n`` workers (or all of them, if fewer), so it
        survives the loss of a worker; returns when the copies exist."""
        found: list[Future] = []
        collect_futures(futures if not isinstance(futures, Future) else [futures], found)
        waiting.wait(found)
        keys = [f.key for f in found if f.status == "finished"]
        if not keys:
            return
        n = min(n, len(self.ncores()))
        self._send(Replicate(keys=keys, n=n))
        deadline = time.monotonic() + timeout
        while True:
            who_has = self._run(self._data.who_has(keys))
            if all(len(holders) >= n for holders in who_has.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replicate: not every key on {n} workers after {timeout} s")
            time.sleep(0.02)

    def restart(self, timeout: float = 30.0) -> None:
        """Forget every task and result, and restart every worker process. The futures of
        every client become cancelled; returns when the workers are back."""
        with self._lock:
            fails = self._state.cancel_everything("the cluster restarted", finished_too=True)
        for fail in fails:
            fail.state.fail(fail.exception, status=fail.status)
        self._run(self._ask(lambda i: Restart(id=i, timeout=timeout)), timeout + 5)

    def story(self, *keys: str | Future, timeout: float = 30.0) -> list[dict[str, Any]]:
        """What happened to these keys (or futures' keys), for debugging: the log entries of
        the center and of every worker, oldest first. Each entry is a dict with ``key``,
        ``start`` and ``finish`` (the states it left and entered), ``stimulus_id`` (the event
        that caused the move), ``time`` and ``worker`` (the worker's address, ``""`` for the
        center). The logs are bounded: a long-finished key may have no entries left."""
        names = [k.key if isinstance(k, Future) else k for k in keys]
        center = self._center
        if center is not None and "story" not in center.features:
            raise ClusterError(f"the center at {self.address} keeps no stories (an older "
                               "release: it did not announce the protocol feature 'story')")
        return self._run(self._ask(lambda i: Story(id=i, keys=names)), timeout).entries

    def run(self, func, *args, workers: list[str] | None = None, **kwargs) -> dict[str, Any]:
        """``func(*args, **kwargs)`` once on every worker (or those named): {address: result}."""
        addresses = workers or list(self.ncores())
        futures = {address: self.submit(func, *args, workers=[address], pure=False,
                                        priority=2**31 - 1, **kwargs)
                   for address in addresses}
        return self.gather(futures)

    def upload_file(self, path: str | os.PathLike) -> dict[str, str]:
        """Send a file to every worker; a .py, .zip or .egg becomes importable there."""
        with open(path, "rb") as f:
            content = f.read()
        return self.run(install_file, os.path.basename(path), content)

    # -- dask -----------------------------------------------------------------------------------
    def get(self, dsk, keys, **kwargs) -> Any:
        """A dask scheduler: ``dask.compute(x, scheduler=e.get)`` runs the graph here."""
        from .dask_graphs import get
        return get(self, dsk, keys, **kwargs)

    def compute(self, collections: Any) -> Any:
        """Futures for dask collections (a collection, or a list or tuple of them), computed on
        the cluster; ``result()`` gives what ``collection.compute()`` would."""
        from .dask_graphs import compute
        if isinstance(collections, (list, tuple)):
            return compute(self, list(collections))
        return compute(self, [collections])[0]

    def as_dask_scheduler(self):
        """``with e.as_dask_scheduler(): x.compute()`` -- dask runs on this cluster inside."""
        from .dask_graphs import as_dask_scheduler
        return as_dask_scheduler(self)

    # -- concurrent.futures -----------------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``concurrent.futures`` style: refuse new work; wait for the futures still held (or,
        with ``cancel_futures``, cancel those not started), keep their results readable, then
        close. ``wait=False`` returns at once and does the same in the background."""
        shutdown.shut(self, wait, cancel_futures)

    def stop_accepting(self) -> None:
        """From now on ``submit``/``map`` raise ``RuntimeError``; results still arrive."""
        self._accepting = False

    def cancel_unstarted(self, futures: list[Future] | None = None) -> None:
        """Cancel the futures (default: every one held) whose tasks have not started;
        running ones go on."""
        with self._lock:
            if futures is None:
                keys = [state.key for state in self._state.pending()]
            else:
                keys = list(dict.fromkeys(f.key for f in futures if not f.done()))
        if not keys:
            return
        center = self._center
        if center is not None and "cancel-pending-only" in center.features:
            # Only the center knows which have started: it cancels the others and tells us.
            self._send_cancel(keys, pending_only=True)
        else:  # an older center cannot tell running tasks apart: cancel them all
            self.cancel([Future(key, self) for key in keys])

    def settle_and_keep_results(self, budget: int) -> None:
        """Wait for every held future, then copy results (up to ``budget`` bytes in all) into
        the client, so they stay readable once the connection is closed."""
        with self._lock:
            held = [Future(key, self) for key in self._state.held()]
        waiting.wait(held)
        keys = []
        for future in held:
            state = future._keystate
            if state.status == "finished" and state.small_value is None \
                    and state.nbytes <= budget:
                budget -= state.nbytes
                keys.append(future.key)
        if keys and self.status == "running":
            try:
                payloads = self._run(self._data.payloads(keys))
            except Exception:  # noqa: BLE001 -- those results are read from the cluster or fail
                payloads = {}
            for future in held:
                if future.key in payloads:
                    future._keystate.small_value = payloads[future.key]

    def get_executor(self, **submit_options) -> concurrent.futures.Executor:
        """A strict ``concurrent.futures.Executor`` over this cluster: every call runs
        (``pure=False``), every keyword of ``submit``/``map`` goes to the function, and
        ``map`` yields results in order. dist's options (``workers``, ``priority``,
        ``retries``, ``resources``...) are given here, for every call of the view."""
        from .asynchronous import ConcurrentView
        return ConcurrentView(self, submit_options)

    # -- closing --------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (and the local cluster of ``Executor()``); futures not done
        become cancelled, as with dask. ``shutdown()`` waits for them instead."""
        if self.status in ("closing", "closed"):
            return
        was_running = self.status == "running"
        self.status = "closing"
        self._accepting = False
        try:
            if was_running and self._center is not None:
                self._io.run(self._close_async(), timeout=5)
        except Exception:  # noqa: BLE001 -- closing goes on whatever the cluster says
            pass
        self._io.stop()
        if self.cluster is not None:
            self.cluster.close()
        self.status = "closed"
        with self._lock:
            fails = self._state.cancel_everything("the executor closed")
        for fail in fails:
            fail.state.fail(fail.exception, status=fail.status)

    async def _close_async(self) -> None:
        self._workers.close()
        if self._center is not None and not self._center.is_closed:
            self._center.close("client closing")

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            self.shutdown(wait=True)  # as concurrent.futures: leaving the block waits
        else:
            self.close()  # the block failed: nobody waits for its work

    def __del__(self) -> None:
        try:
            if self.status == "running":
                self.close()
        except Exception:  # noqa: BLE001
            pass

    # repr shows what is known here: the workers as last listed (at connect, or by the last
    # call that asked the center, e.g. ``ncores()``), never a round trip that could block.
    def _repr_html_(self) -> str:
        if self.status != "running":
            return f"<b>Executor</b>: {self.address} ({self.status})"
        workers = self._workers_seen
        rows = "".join(
            f"<tr><td>{w['name']}</td><td>{w['address']}</td><td>{w['nthreads']}</td>"
            f"<td>{w['metrics'].get('memory', 0) / 2**20:.0f} MiB</td>"
            f"<td>{w['keys']}</td></tr>" for w in workers)
        threads = sum(w["nthreads"] for w in workers)
        return (f"<div><b>Executor</b> connected to <code>{self.address}</code>: "
                f"{len(workers)} workers, {threads} threads, {self._held_count()} futures"
                "<table><tr><th>name</th><th>address</th><th>threads</th><th>memory</th>"
                f"<th>keys</th></tr>{rows}</table></div>")

    def __repr__(self) -> str:
        if self.status != "running":
            return f"<Executor: {self.address} ({self.status})>"
        workers = self._workers_seen
        threads = sum(w["nthreads"] for w in workers)
        return (f"<Executor: center={self.address!r} workers={len(workers)} threads={threads} "
                f"futures={self._held_count()}>")

    def _held_count(self) -> int:
        with self._lock:
            return len(self._state.states)
