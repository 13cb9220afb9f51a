"""Every operation of the client that talks to the cluster, once, as a coroutine on the I/O
loop. ``Executor`` runs them with ``core.run`` (waiting in the caller's thread) and
``AsyncExecutor`` with ``core.call`` (awaiting on the caller's event loop)."""
from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Hashable, Iterator
from typing import Any

from dist_protocol.addresses import parse_address
from dist_protocol.key_names import user_key
from dist_protocol.messages import (AdaptiveTarget, Rebalance, Replicate, Restart,
                                    RetireWorkers, Story, UploadedFile, UploadFile)
from dist_protocol.serialize import Payload, serialize
from dist_protocol.timeouts import TimeoutError, wait_for

from .. import pickled_futures, scattered_futures, transfer
from ..arguments import duration, seconds, whole_number
from ..errors import ClusterError, EnvironmentMismatch, LostDataError
from ..future import Future
from ..keys import data_key, given_key
from ..packing import collect_futures, futures_of, without_missing
from ..data_paths import answer_due
from .client import ClientCore
from .keystate import KeyState
from .waiters import settled_async, settled_or_failed_async


def futures_in(structure: Any) -> list[Future]:
    found: list[Future] = []
    collect_futures(structure if not isinstance(structure, Future) else [structure], found)
    return found


def any_pending(futures: Any) -> bool:
    return any(not future.keystate.done for future in futures_in(futures))


NOT_HERE = object()


def gather_here(core: ClientCore, futures: Any, errors: str = "raise") -> Any:
    """What ``gather`` gives when every value is known here (small results, results kept
    after a shutdown): no trip to the I/O thread, and readable after ``close()``; else
    ``NOT_HERE``. ``ValueError`` for futures of another cluster, whatever their state."""
    found = futures_in(futures)
    core.refuse_foreign(found, "gather")
    if errors not in ("raise", "skip"):
        return NOT_HERE
    states = [future.keystate for future in found]
    if any(state.status == "finished" and state.small is None
           or state.status == "pending" for state in states):
        return NOT_HERE
    bad = [state for state in states if state.status != "finished"]
    if bad and errors == "raise":
        raise bad[0].failure
    values: dict[str, Payload | bytes] = {state.key: state.small for state in states
                                          if state.status == "finished"
                                          and state.small is not None}
    return without_missing(futures, transfer.load(values))


async def gather(core: ClientCore, futures: Any, errors: str = "raise",
                 timeout: float | None = None) -> Any:
    """The values of ``futures`` (a Future, or lists/tuples/dicts/sets of them), fetched
    straight from the workers, one request per worker; ``TimeoutError`` after ``timeout``."""
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    if isinstance(futures, Iterator):
        futures = list(futures)
    # A TimeoutError a task raised is its error, not this one.
    late = f"gather: not done within {timeout} s"
    try:
        if isinstance(futures, Future):
            return await wait_for(core.value_of(futures.keystate), timeout, late)
        return await wait_for(_gather(core, futures, errors == "skip"), timeout, late)
    except TimeoutError as exc:
        if exc.args != (late,):
            raise
        raise type(exc)(late + core.why_late()) from None


async def _gather(core: ClientCore, futures: Any, skip: bool) -> Any:
    found = futures_in(futures)
    states = [future.keystate for future in found]
    # As dask's: the first failure raises at once, whatever is still running (skipped
    # ones are left out only once all are done).
    settling = settled_async if skip else settled_or_failed_async
    # A result lost with its worker meanwhile is pending again while it is recomputed.
    while True:
        await settling(states)
        pending = False
        keys: dict[str, None] = {}
        for state in states:  # (one pass, no call a key: ``status``, not ``done``)
            status = state.status
            if status == "finished":
                keys[state.key] = None
            elif status == "pending":
                pending = True
            elif not skip:
                raise state.failure  # the first failure, in order
        if not pending:
            break
    values = await core.data.values(list(keys), skip) if keys else {}
    return without_missing(futures, values)


async def scatter(core: ClientCore, data: Any, broadcast: bool = False, workers=None,
                  hash: bool = True, timeout: float | None = 30.0) -> Any:
    """Put local data on the workers; Futures as ``data`` was given (a list, dict or single
    value). The center says where each value goes; this client sends it there directly.
    ``broadcast=True`` puts a copy on every worker."""
    if isinstance(data, dict):
        names = {given_key(key): key for key in data}  # (a dict's keys may be dask's keys)
        items = [(name, data[key]) for name, key in names.items()]
    elif isinstance(data, (list, tuple, set, frozenset, Iterator)):
        items = [(data_key(v, hash), v) for v in data]
    else:
        items = [(data_key(data, hash), data)]
    timeout = None if timeout is None else duration("timeout", timeout)
    payloads, carried = _serialized(items)
    core.refuse_foreign([f for found in carried.values() for f in found], "scatter")
    if isinstance(workers, str):
        workers = [workers]
    with core.lock:
        new = core.state.keys_to_submit(carried) if carried else []
    futures = {key: core.future(key) for key, _ in items}
    try:
        if carried:
            await scattered_futures.put(core, futures, carried,
                                        {key: v for key, v in items if key in carried},
                                        new, workers, timeout)
            if broadcast:
                everywhere = max(1, len(await core.refresh_workers()))
                await replicate(core, [futures[key] for key in carried], everywhere, timeout,
                                workers)
            for key in carried:
                del payloads[key]
        stored = (await core.data.scatter(payloads, broadcast, workers, timeout)
                  if payloads else {})
    except BaseException as exc:
        # Nothing will settle them: whoever still holds them (an exception's traceback) must
        # not wait for them, nor a shutdown that keeps results.
        for future in futures.values():
            if future.keystate.status == "pending":
                future.keystate.fail(exc)
        raise
    for key, addresses in stored.items():
        state = futures[key].keystate
        if state.status != "finished":  # pending, or lost/cancelled in an earlier life
            state.finish(payloads[key].nbytes, "", addresses)
    if isinstance(data, dict):
        return {names[name]: futures[name] for name, _ in items}
    if isinstance(data, (list, tuple, set, frozenset, Iterator)):
        out = [futures[key] for key, _ in items]
        return tuple(out) if isinstance(data, tuple) else out
    return futures[items[0][0]]


def _serialized(items: list[tuple[str, Any]]) -> tuple[dict[str, Payload], dict[str, list]]:
    """The payload of each value, and the futures pickled inside each that holds some."""
    payloads: dict[str, Payload] = {}
    carried: dict[str, list] = {}
    for key, value in items:
        found: list = []
        before = pickled_futures.collect(found)
        try:
            payloads[key] = serialize(value)
        finally:
            pickled_futures.collect(before)
        if found:
            carried[key] = found
    return payloads, carried


async def who_has(core: ClientCore, futures: Any = None) -> dict[Hashable, list[str]]:
    """Which workers hold each key (of ``futures``, or of every future held), by the key as
    the user gave it."""
    if futures is None:
        with core.lock:
            keys = core.state.held()
    else:
        keys = [future.name for future in futures_of(futures)]
    return {user_key(name): holders for name, holders in (await core.data.who_has(keys)).items()}


async def has_what(core: ClientCore, workers: Any = None) -> dict[str, list[Hashable]]:
    """The keys of this client's futures each worker holds (of those ``workers`` names, by
    address, name or host), by worker address."""
    addresses = _named_workers(await core.refresh_workers(), workers)
    out: dict[str, list[Hashable]] = {address: [] for address in addresses}
    for key, holders in (await who_has(core)).items():
        for address in holders:
            if workers is None or address in out:
                out.setdefault(address, []).append(key)
    return out


async def ncores(core: ClientCore, workers: Any = None) -> dict[str, int]:
    """Threads per worker (of those ``workers`` names, by address, name or host), by
    address."""
    running = await core.refresh_workers()
    wanted = set(_named_workers(running, workers))
    return {w["address"]: w["nthreads"] for w in running if w["address"] in wanted}


async def processing(core: ClientCore, workers: Any = None) -> dict[str, list[Hashable]]:
    """The keys of the tasks each worker (of those ``workers`` names) is running, by
    address, as dask's ``processing()``; a center that does not list them raises."""
    running = await core.refresh_workers()
    if any("processing_keys" not in w for w in running):
        raise ClusterError(f"the center at {core.address} does not list the keys its workers "
                           "run (an older release); scheduler_info() gives their number")
    wanted = set(_named_workers(running, workers))
    return {w["address"]: [user_key(name) for name in w["processing_keys"]] for w in running
            if w["address"] in wanted}


async def cluster_info(core: ClientCore, n_workers: int = -1) -> dict[str, Any]:
    """The cluster as dask's ``Client.scheduler_info()`` describes it: the center's address,
    when it started (``"started"``, seconds since the epoch; None from a center older than
    the feature ``center-started``), the counts of workers, threads and memory, and each
    worker's map (dask's names, and dist's counts of tasks and keys beside); ``n_workers``:
    only the first that many workers' maps (-1: all), as dask's."""
    n_workers = whole_number("n_workers", n_workers, minimum=-1)
    workers = {}
    table = await core.refresh_workers()
    totals = {"n_workers": len(table),
              "total_threads": sum(w.get("nthreads", 0) for w in table),
              "total_memory": sum(w.get("memory_limit") or 0 for w in table)}
    for w in table if n_workers == -1 else table[:n_workers]:
        address = w["address"]
        workers[address] = {
            "type": "Worker", "id": w.get("name") or address, "name": w.get("name") or address,
            "host": parse_address(address)[1],
            "nthreads": w.get("nthreads", 0), "memory_limit": w.get("memory_limit", 0),
            "status": w.get("status", ""), "metrics": w.get("metrics") or {},
            # why its disk takes no values (it pauses at the spill threshold); "": it does
            "cannot_spill": w.get("cannot_spill") or "",
            # dask's: when it was heard last (its latest heartbeat), what it declared, and
            # neither services nor a nanny process (dist's workers have none)
            "last_seen": (w.get("metrics") or {}).get("time"),
            "resources": w.get("resources") or {}, "services": {}, "nanny": None,
            "processing": w.get("processing", 0), "ahead": w.get("ahead", 0),
            "keys": w.get("keys", 0), "nbytes": w.get("nbytes", 0),
            "environment": w.get("environment")}
    return {"type": "Center", "id": core.address, "address": core.address,
            "started": core.center_started, **totals, "workers": workers}


async def versions(core: ClientCore, check: bool = False) -> dict[str, Any]:
    await core.refresh_workers()
    if check:
        problems = core.envs.mismatches()
        if problems:
            raise EnvironmentMismatch("the cluster's versions differ: " + "; ".join(problems))
    return core.envs.versions()


async def versions_as_dask(core: ClientCore, check: bool = False,
                           packages: Any = None) -> dict[str, Any]:
    """``versions`` under dask's ``get_versions`` names as well (the center is also its
    ``"scheduler"``), with the versions of ``packages`` (None where one is not installed)
    added to the client's and each worker's ``"packages"``; a center reports only its own."""
    from ..worker_functions import package_versions
    found = await versions(core, check)
    found["scheduler"] = found["center"]
    names = [packages] if isinstance(packages, str) else list(packages or ())
    if names:
        extra = {"client": package_versions(names),
                 **await run_everywhere(core, package_versions, (names,), {})}
        envs = {"client": found["client"], **found["workers"]}
        for where, versions_there in extra.items():
            env = envs.get(where)
            if env is not None:
                env["packages"] = {**(env.get("packages") or {}), **versions_there}
    return found


async def wait_for_workers(core: ClientCore, n_workers: int = 1,
                           timeout: float | None = None) -> None:
    """Return once at least ``n_workers`` workers have registered with the center."""
    n_workers = whole_number("n_workers", n_workers)
    timeout = None if timeout is None else duration("timeout", timeout)
    if n_workers <= 0:
        return
    late = f"fewer than {n_workers} workers after {timeout} s"
    if core.center_has("waits"):  # the center answers when the workers are there
        workers = await wait_for(core.refresh_workers(n_workers, timeout),
                                 answer_due(timeout), late)
        if len(workers) < n_workers:
            raise TimeoutError(late)
        return

    async def enough() -> None:  # an older center: ask again until enough are there
        delay = 0.01
        while len(await core.refresh_workers()) < n_workers:
            await asyncio.sleep(delay)
            delay = min(2 * delay, 0.25)
    await wait_for(enough(), timeout, late)


async def replicate(core: ClientCore, futures: Any, n: int = 2,
                    timeout: float | None = 60.0, workers: Any = None) -> None:
    """Copy the futures' data onto ``n`` workers (or all of them, if fewer); returns when the
    copies exist. ``workers`` (addresses, names or hosts): the copies go on those only, and
    only copies there count."""
    n = whole_number("n", n, minimum=1)
    timeout = None if timeout is None else duration("timeout", timeout)
    addresses = None
    if workers is not None:
        if not core.center_has("replicate-workers"):
            raise ClusterError(f"the center at {core.address} cannot place copies on chosen "
                               "workers (an older release: it did not announce the protocol "
                               "feature 'replicate-workers')")
        addresses = _named_workers(await core.refresh_workers(), workers)
    states = [future.keystate for future in futures_of(futures)]
    await settled_async(states)
    keys = [state.key for state in states if state.status == "finished"]
    if not keys:
        return
    if core.center_has("waits"):  # the center answers when the copies exist
        await _replicate_answered(core, states, keys, n, timeout, addresses)
        return
    n = max(1, min(n, len(await core.refresh_workers())))
    core.send(Replicate(keys=keys, n=n))

    async def copies_exist() -> None:
        while True:
            holders = await core.data.who_has(keys)
            if all(len(workers) >= n for workers in holders.values()):
                return
            await asyncio.sleep(0.02)
    await wait_for(copies_exist(), timeout,
                   f"replicate: not every key on {n} workers after {timeout} s")


async def _replicate_answered(core: ClientCore, states: list[KeyState], keys: list[str],
                              n: int, timeout: float | None,
                              addresses: list[str] | None) -> None:
    reply = await wait_for(
        core.ask(lambda i: Replicate(keys=keys, n=n, id=i, timeout=timeout,
                                     workers=addresses)),
        answer_due(timeout), f"replicate: no answer from the center within {timeout} s")
    if reply.status == "timeout":
        raise TimeoutError(f"replicate: not every key on {reply.n} workers after {timeout} s "
                           f"(short: {', '.join(reply.keys[:5])}"
                           f"{', ...' if len(reply.keys) > 5 else ''})")
    if reply.status != "ok":  # gone: released, lost or being computed again meanwhile
        by_key = {state.key: state for state in states}
        for key in reply.keys:
            state = by_key.get(key)
            if state is not None and state.status in ("error", "lost", "cancelled"):
                raise state.failure
        raise LostDataError(f"replicate: {', '.join(reply.keys)} no longer held by the "
                            "cluster (released, lost or being computed again)")


async def retire_workers(core: ClientCore, workers: list[str] | None, close: bool,
                         timeout: float) -> dict[str, str]:
    """Retire workers gracefully (their data copied elsewhere first): those named, or those
    the center says the work does not need (``adaptive-target``'s choice). The workers
    retired, by name; those that could not be retire with a warning naming why."""
    center = core.center
    if center is None or "retire-workers" not in center.features:
        raise ClusterError("this center cannot retire workers (feature 'retire-workers'): "
                           "upgrade dcenter")
    if workers is None:
        workers = list((await core.ask(lambda i: AdaptiveTarget(id=i))).retire)
    if not workers:
        return {}
    named = [str(worker) for worker in workers]
    reply = await wait_for(core.ask(lambda i: RetireWorkers(id=i, workers=named, close=close)),
                           timeout, f"retire_workers: not done within {timeout} s")
    if reply.failed:
        warnings.warn("could not retire " + "; ".join(
            f"{worker}: {why}" for worker, why in reply.failed.items()), stacklevel=3)
    return dict(reply.retired)


async def rebalance(core: ClientCore, futures: Any = None, workers: Any = None) -> None:
    """Move data between workers (of ``workers``) until each holds about as many bytes; with
    ``futures``, only their keys, once they are done (``KeyError`` for those that could not
    move: not in memory, or their move failed)."""
    center = core.center
    if center is not None and "rebalance" not in center.features:
        raise ClusterError(f"the center at {core.address} cannot rebalance (an older release: "
                           "it did not announce the protocol feature 'rebalance')")
    keys = None
    if futures is not None:
        states = [future.keystate for future in futures_of(futures)]
        await settled_async(states)
        keys = sorted({state.key for state in states})
        if not keys:
            return
    if isinstance(workers, str):
        workers = [workers]
    names = None if workers is None else list(workers)
    reply = await core.ask(lambda i: Rebalance(id=i, keys=keys, workers=names))
    if reply.error is not None:
        raise ValueError(f"rebalance: {reply.error}")
    if keys is not None and reply.failed:
        raise KeyError(f"rebalance: could not move {', '.join(map(repr, reply.failed))} "
                       f"(not in memory, or a worker or copy failed meanwhile)")


async def restart(core: ClientCore, timeout: float = 30.0,
                  wait_for_workers: bool = True) -> None:
    """Forget every task and result and restart every worker process; the futures of every
    client become cancelled. Returns when the workers are back (``TimeoutError`` when they
    are not all back within ``timeout`` seconds), or at once with ``wait_for_workers=False``."""
    timeout = seconds("timeout", timeout)
    core.cancel_everything("the cluster restarted", finished_too=True)
    wait = timeout if wait_for_workers else 0.0  # 0: the center answers at once
    reply = await wait_for(core.ask(lambda i: Restart(id=i, timeout=wait)), wait + 5,
                           f"restart: no answer from the center within {wait + 5} s")
    if wait_for_workers and reply.expected is not None and reply.workers < reply.expected:
        raise TimeoutError(
            f"restart: {reply.workers} of the {reply.expected} workers registered again "
            f"within {timeout} s (the restart happened: every task and result is gone, and "
            f"workers coming back later get work); give a longer timeout, or "
            f"restart(wait_for_workers=False) and then wait_for_workers(n)")


async def upload_file(core: ClientCore, path: Any, load: bool, install: Any) -> dict[str, str]:
    """Send a file to every worker: the center keeps it for workers that register later (when
    it can), and ``install`` (run on each worker now registered) writes it there."""
    with open(path, "rb") as f:
        content = f.read()
    name = os.path.basename(path)
    center = core.center
    if center is not None and "uploads" in center.features:
        file = UploadedFile(name=name, content=Payload("bytes", [content]), load=load)
        reply = await core.ask(lambda i: UploadFile(id=i, file=file))
        if reply.error is not None:
            raise ValueError(f"upload_file: {reply.error}")
    return await run_everywhere(core, install, (name, content, load), {})


async def story(core: ClientCore, keys: tuple, timeout: float = 30.0) -> list[dict[str, Any]]:
    names = [k.name if isinstance(k, Future) else given_key(k) for k in keys]
    center = core.center
    if center is not None and "story" not in center.features:
        raise ClusterError(f"the center at {core.address} keeps no stories (an older "
                           "release: it did not announce the protocol feature 'story')")
    reply = await wait_for(core.ask(lambda i: Story(id=i, keys=names)), timeout,
                           f"story: no answer within {timeout} s")
    return [{**entry, "key": user_key(entry["key"])} if "key" in entry else entry
            for entry in reply.entries]


RUN_ON_ERROR = ("raise", "return", "ignore")


async def _worker_addresses(core: ClientCore, workers: Any) -> list[str]:
    """The addresses of the workers ``workers`` names (every one, when None): by address,
    name or host, as a task's ``workers=`` does. A name no worker answers to raises
    ``ValueError``: a call pinned to it would wait for ever."""
    return _named_workers(await core.refresh_workers(), workers)


def _named_workers(running: list[dict], workers: Any) -> list[str]:
    """The addresses of the workers of ``running`` that ``workers`` names (see
    ``_worker_addresses``)."""
    if workers is None:
        return [w["address"] for w in running]
    wanted = [workers] if isinstance(workers, str) else list(workers)
    found: dict[str, None] = {}
    unknown = []
    for name in wanted:
        matches = [w["address"] for w in running
                   if name in (w["address"], w.get("name"), parse_address(w["address"])[1])]
        if not matches:
            unknown.append(name)
        found.update(dict.fromkeys(matches))
    if unknown:
        raise ValueError(f"no worker has the address, name or host "
                         f"{', '.join(map(repr, unknown))}")
    return list(found)


async def run_everywhere(core: ClientCore, func, args: tuple, kwargs: dict,
                         workers: list[str] | None = None,
                         on_error: str = "raise", wait: bool = True) -> dict[str, Any]:
    """``func(*args, **kwargs)`` once on every worker (or those named): {address: result}.
    Where it raises: ``on_error="raise"`` raises that error here, ``"return"`` gives the
    exception as that worker's result, ``"ignore"`` leaves the worker out. A ``func`` taking
    ``dask_worker`` gets the worker's ``get_worker()`` view there, as dask passes its worker.
    ``wait=False``: the calls run to their end and this returns ``{}`` at once."""
    from ..datasets import fire_and_forget
    from ..tasks import TaskBuilder
    from ..worker_functions import call_with_worker, takes_dask_worker
    if on_error not in RUN_ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(map(repr, RUN_ON_ERROR))}, "
                         f"not {on_error!r}")
    if takes_dask_worker(func) and "dask_worker" not in kwargs:
        func, args = call_with_worker, (func, *args)
    addresses = await _worker_addresses(core, workers)
    futures = {}
    # Each call errs should its worker leave or die before it ran or while it ran, rather
    # than wait for good for a worker of that address (a nanny's new worker has another).
    center = core.center
    pinned = center is not None and "pinned-tasks" in center.features
    for address in addresses:
        options = TaskBuilder.options([address], 2**31 - 1, 0, False, None)
        if pinned:
            options["pinned"] = True
        futures[address] = core.submitter.submit_call(func, args, kwargs, None, False,
                                                      options, refresh=False)
    if not wait:
        fire_and_forget(list(futures.values()))
        return {}
    if on_error == "raise":
        return await gather(core, futures)
    values = await gather(core, futures, errors="skip")
    if on_error == "return":
        for address, future in futures.items():
            if address not in values:
                values[address] = future.keystate.failure
    return {address: values[address] for address in futures if address in values}


__all__ = ["futures_in", "gather", "has_what", "ncores", "rebalance", "replicate", "restart",
           "RUN_ON_ERROR", "run_everywhere", "scatter", "story", "upload_file", "versions",
           "wait_for_workers", "who_has"]
