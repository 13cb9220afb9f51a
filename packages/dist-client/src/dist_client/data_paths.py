"""Gathering and scattering, on the client's I/O thread: the center is asked where data is
(or where it should go) and the data travels between this client and the workers directly."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from dist_protocol import timeouts
from dist_protocol.comm import Comm
from dist_protocol.messages import ClusterInfo, Message, ScatterDone, ScatterPlan, WhoHas
from dist_protocol.serialize import Payload, SerializationError

from . import transfer
from .memory_room import memory_room, refuse_if_no_room
from .environments import ClusterEnvironments
from .errors import ClusterError, LostDataError
from .core.keystate import KeyState

# Workers refuse memory limits below this: values smaller fit on any worker.
SMALLEST_MEMORY_LIMIT = 100 * 10**6
# Scattered data goes to a worker in batches of at most this share of its memory limit, so
# that it stores (and spills) each before reading the next; the share its own fetches keep to.
PUSH_SHARE = 0.1
GATHER_PATIENCE = 120.0  # seconds to wait for a key being recomputed somewhere before giving up
# A gather of at least this many bytes first checks that this process has room for them all
# (``memory_room``): past a control group's limit the kernel kills it without a word.
ROOM_CHECK_FROM = 64 * 2**20

Ask = Callable[[Callable[[int], Message]], Awaitable[Any]]
# How much longer than its timeout a request the center answers when what it waits for holds
# (feature ``waits``) may take to come back: the center answers at the timeout itself.
ANSWER_GRACE = 5.0


def answer_due(timeout: float | None) -> float | None:
    """How long to wait for the answer to a request that waits up to ``timeout`` at the
    center (``None``: as long as it takes)."""
    return None if timeout is None else timeout + ANSWER_GRACE


class DataPaths:
    """Where data is and how it moves, for one executor (its center, workers and keys)."""

    def __init__(self, address: str, ask: Ask, center: Callable[[], Comm | None],
                 states: Callable[[str], KeyState | None], workers: transfer.WorkerConnections,
                 envs: ClusterEnvironments):
        self.address = address
        self._ask = ask
        self._center = center
        self._state_of = states
        self.workers = workers
        self._envs = envs

    async def who_has(self, keys: list[str]) -> dict[str, list[str]]:
        reply = await self._ask(lambda i: WhoHas(id=i, keys=keys))
        return reply.who_has

    async def still_held(self, address: str, keys: list[str]) -> bool:
        """Whether the center still counts ``address`` as holding any of ``keys``."""
        who_has = await self.who_has(keys)
        return any(address in who_has.get(key, ()) for key in keys)

    # -- gathering ------------------------------------------------------------------------------
    async def values(self, keys: list[str], skip: bool = False) -> dict[str, Any]:
        return transfer.load(await self.payloads(keys, skip))

    async def payloads(self, keys: list[str], skip: bool = False
                       ) -> dict[str, Payload | bytes]:
        """The serialized values of ``keys``, fetched from their holders; with ``skip``, keys
        that err or are lost meanwhile (a recomputation that failed, say) are left out
        instead of raising. A key being recomputed is waited for, up to GATHER_PATIENCE."""
        holders = {}
        payloads: dict[str, Payload | bytes] = {}
        for key in keys:
            state = self._state_of(key)
            small = state.small if state is not None else None
            if small is not None:
                payloads[key] = small
            else:
                holders[key] = list(state.workers) if state is not None else []
        unknown = [k for k, h in holders.items() if not h]
        if unknown:
            holders.update(await self.who_has(unknown))
        self._refuse_what_this_process_cannot_hold(holders)
        patience = time.monotonic() + GATHER_PATIENCE
        delay = 0.01
        while holders:
            sizes = {key: state.nbytes for key in holders
                     if (state := self._state_of(key)) is not None}
            got, failed = await transfer.fetch(self.workers, holders, self.still_held, sizes)
            payloads.update(got)
            if not failed:
                break
            for key, why in list(failed.items()):
                if isinstance(why, transfer.Unserializable):
                    if not skip:
                        raise SerializationError(f"cannot fetch the value of {key}: {why}")
                    del failed[key]
                    continue
                state = self._state_of(key)
                if state is not None and state.status in ("error", "lost", "cancelled"):
                    if not skip:
                        raise state.failure
                    del failed[key]
            if not failed:
                break
            if time.monotonic() > patience:
                if skip:
                    break
                key, why = next(iter(failed.items()))
                raise LostDataError(f"could not fetch {key}: {why}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            holders = await self.who_has(list(failed))
        return payloads

    def _refuse_what_this_process_cannot_hold(self, holders: dict[str, list[str]]) -> None:
        total = sum(state.nbytes for key in holders
                    if (state := self._state_of(key)) is not None and state.nbytes)
        if total >= ROOM_CHECK_FROM:
            refuse_if_no_room(len(holders), total, memory_room())

    async def value_from(self, key: str, workers: list[str]) -> Any:
        """The value of one key, fetched from ``workers`` (as the center just named them)."""
        if not workers:
            raise LostDataError(f"the center named no holder of {key}")
        got, failed = await transfer.fetch(self.workers, {key: workers}, self.still_held)
        if failed:
            raise LostDataError(next(iter(failed.values())))
        return transfer.load(got)[key]

    # -- scattering -----------------------------------------------------------------------------
    async def scatter(self, payloads: dict[str, Payload], broadcast: bool, workers,
                      timeout: float | None) -> dict[str, list[str]]:
        """Put ``payloads`` where the center says; returns where each key was stored, once
        the center knows it."""
        nbytes = {key: payload.nbytes for key, payload in payloads.items()}
        targets = await self._plan(nbytes, broadcast, workers, timeout)
        self._envs.check_targets([a for places in targets.values() for a in places])
        limits = await self._memory_limits(targets, nbytes)
        self._refuse_what_no_target_can_hold(targets, nbytes, limits)
        batch_bytes = {address: max(1, int(limit * PUSH_SHARE))
                       for address, limit in limits.items() if limit}
        try:
            stored = await transfer.push(self.workers, targets, payloads, batch_bytes)
        except transfer.TRANSIENT as exc:
            raise ClusterError(f"could not send the data to a worker: {exc}") from exc
        # The workers report the data to the center on their own connections, which can lag
        # behind their replies to us: say where it is ourselves, ahead of anything this client
        # sends next, so that the center knows it before any later who-has or submit.
        center = self._center()
        if center is None or center.is_closed:
            raise ClusterError(f"no connection to the center at {self.address}")
        if "scatter-done" in center.features:
            center.send(ScatterDone(who_has=stored, nbytes={key: nbytes[key] for key in stored}))
        else:  # a center that does not take scatter-done: wait until the workers' reports land
            await self.until_center_knows(list(stored))
        return stored

    async def _plan(self, nbytes: dict[str, int], broadcast: bool, workers,
                    timeout: float | None) -> dict[str, list[str]]:
        """Where each key goes; with no worker to take them, the first to come within
        ``timeout`` seconds (``None``: none)."""
        def plan(wait: float | None) -> Callable[[int], Message]:
            return lambda i: ScatterPlan(id=i, keys=nbytes, broadcast=broadcast,
                                         workers=workers, timeout=wait)
        no_workers = "no workers to scatter to" + (f" among {workers}" if workers else "")
        center = self._center()
        if timeout and center is not None and "waits" in center.features:
            # The center answers once a worker can take the data (or empty at the timeout).
            reply = await timeouts.wait_for(self._ask(plan(timeout)), answer_due(timeout),
                                            no_workers)
            if not reply.targets:
                raise timeouts.TimeoutError(no_workers)
            return dict(reply.targets)
        give_up = time.monotonic() + (timeout or 0)
        while True:  # an older center: ask again until a worker is there
            reply = await self._ask(plan(None))
            if reply.targets:
                return dict(reply.targets)
            if time.monotonic() > give_up:
                raise timeouts.TimeoutError(no_workers)
            await asyncio.sleep(0.1)

    async def _memory_limits(self, targets: dict[str, list[str]], nbytes: dict[str, int]
                             ) -> dict[str, int]:
        """The memory limits of the workers (0: none), asked for only when the data for one
        of them is large enough for its limit to matter."""
        per_worker: dict[str, int] = {}
        for key, addresses in targets.items():
            for address in addresses:
                per_worker[address] = per_worker.get(address, 0) + nbytes[key]
        if max(per_worker.values(), default=0) < SMALLEST_MEMORY_LIMIT * PUSH_SHARE:
            return {}
        workers = (await self._ask(lambda i: ClusterInfo(id=i))).workers
        return {w["address"]: w.get("memory_limit") or 0 for w in workers}

    @staticmethod
    def _refuse_what_no_target_can_hold(targets: dict[str, list[str]], nbytes: dict[str, int],
                                        limits: dict[str, int]) -> None:
        """A worker receiving a value as large as its memory limit passes the limit while it
        reads it and is restarted, losing every result it holds; the center plans such a
        value for a worker with room where there is one, so here no worker has: say so."""
        for key, addresses in targets.items():
            for address in addresses:
                limit = limits.get(address, 0)
                if limit and nbytes[key] >= limit:
                    raise ValueError(
                        f"cannot scatter {key}: it is {nbytes[key] / 1e6:.0f} MB, as large as "
                        f"the memory limit of worker {address} ({limit / 1e6:.0f} MB) and of "
                        "every worker it may go to; receiving it would take that worker "
                        "past its limit and restart it. Split it into smaller pieces, load "
                        "it inside a task, or add workers with more memory")

    async def until_center_knows(self, keys: list[str], patience: float = 10.0) -> None:
        give_up = time.monotonic() + patience
        delay = 0.002
        while keys and time.monotonic() < give_up:
            who_has = await self.who_has(keys)
            keys = [key for key in keys if not who_has.get(key)]
            if keys:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
