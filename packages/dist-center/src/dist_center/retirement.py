"""Graceful retirement of workers, and the ``adaptive-target`` answer: the center's part of
scaling a cluster down without losing or recomputing anything.

A retiring worker (status ``retiring``) gets no new tasks (placement and ``fill`` only use
running workers) and is asked for the tasks it has not started, which are placed elsewhere.
Once it runs nothing, every key in memory held only by retiring workers is copied to a running
worker through the workers' own peer transfers (``acquire-replicas``); once nothing is held
only there, it is told ``close-worker`` and is retired when it unregisters. A worker whose
connection did not agree the feature is retired at that point and stopped by whoever started
it. A worker that leaves before that, or whose data has nowhere to go, fails to retire.

``Retirements.progress`` runs after every step of ``CenterState.handle``: every decision here
is made from the state as that step left it, so nothing waits on a timer but a stalled copy.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dist_protocol.messages import (AcquireReplicas, AdaptiveTarget, CloseWorker, RetireWorkers,
                                    RetireWorkersReply, StealRequest)

from . import adaptive
from .records import WorkerInfo
from .view import Center

FEATURE = "retire-workers"
COPY_RETRY_AFTER = 30.0  # seconds before a copy that has not arrived is ordered again


class Request:
    __slots__ = ("client", "id", "waiting", "retired", "failed", "close")

    def __init__(self, client: str, request_id: int, close: bool):
        self.client = client
        self.id = request_id
        self.close = close
        self.waiting: set[str] = set()  # addresses
        self.retired: dict[str, str] = {}
        self.failed: dict[str, str] = {}


class Retirements:
    def __init__(self) -> None:
        self.closable: set[str] = set()  # workers whose connection agreed the feature
        self.retiring: dict[str, str] = {}  # address -> name, being retired
        self.closing: set[str] = set()  # told close-worker; retired when they leave
        self.copies: dict[str, tuple[str, float]] = {}  # key -> (copying worker, since)
        self.requests: list[Request] = []

    def client_ops(self, state: Center) -> dict[type, Callable[[str, Any, str], None]]:
        def adaptive_target(client: str, msg: AdaptiveTarget, sid: str) -> None:
            state.send(client, adaptive.target(state, msg))

        def retire(client: str, msg: RetireWorkers, sid: str) -> None:
            self.start(state, client, msg)

        return {AdaptiveTarget: adaptive_target, RetireWorkers: retire}

    def worker_joined(self, address: str, features: frozenset[str]) -> None:
        if FEATURE in features:
            self.closable.add(address)
        else:
            self.closable.discard(address)

    def worker_left(self, address: str) -> None:
        """Forget what it agreed (a retiring worker is seen out by ``progress``): every worker
        that ever came and went would stay here otherwise."""
        if address not in self.retiring:
            self.closable.discard(address)

    def client_left(self, client: str) -> None:
        """Its requests go on (the workers are retiring); nobody is told the outcome."""
        for request in self.requests:
            if request.client == client:
                request.client = ""

    # -- starting --------------------------------------------------------------------------
    def start(self, state: Center, client: str, msg: RetireWorkers) -> None:
        request = Request(client, msg.id, msg.close)
        for wanted in dict.fromkeys(msg.workers):
            address = state.names.get(wanted, wanted)
            worker = state.workers.get(address)
            if worker is None or worker.status == "closed":
                request.failed[wanted] = "no such worker"
                continue
            request.waiting.add(address)
            if address not in self.retiring:
                self.retiring[address] = worker.name
                worker.status = "retiring"
                # Its unstarted tasks come back and are placed again (no thief chosen).
                keys = [key for key in worker.processing if key not in state.stealing]
                for key in keys:
                    state.stealing[key] = None
                if keys:
                    state.send(address, StealRequest(keys=keys))
        self.requests.append(request)

    # -- after every step ------------------------------------------------------------------
    def progress(self, state: Center, sid: str) -> None:
        if not self.retiring:
            if self.requests:
                self._answer(state)
            return
        for address in list(self.retiring):
            worker = state.workers.get(address)
            if worker is None or worker.status != "retiring":  # left (or re-registered)
                self._gone(address)
        running = [w for w in state.workers.values() if w.status == "running"]
        orders: dict[str, dict[str, list[str]]] = {}
        sizes: dict[str, dict[str, int]] = {}
        for address in list(self.retiring):
            if address in self.closing:
                continue
            worker = state.workers[address]
            if worker.processing:
                continue  # its running tasks finish first; their results are moved after
            unique = self._held_only_here(state, worker)
            if unique and not running:
                self._keep(state, worker, "its data could not be moved: no other running "
                                          "worker to take it", sid)
                continue
            if not unique:
                self._done_moving(state, worker)
                continue
            for key in unique:
                copying = self.copies.get(key)
                if copying is not None and copying[0] in state.workers and (
                        state.workers[copying[0]].status == "running"
                        and state.now - copying[1] < COPY_RETRY_AFTER):
                    continue
                ts = state.tasks[key]
                target = min(running, key=lambda w: (w.nbytes, w.address))
                self.copies[key] = (target.address, state.now)
                target.nbytes += ts.nbytes  # counted now, so the next key spreads out
                orders.setdefault(target.address, {})[key] = sorted(ts.who_has)
                sizes.setdefault(target.address, {})[key] = ts.nbytes
        for target_address, who_has in orders.items():
            state.workers[target_address].nbytes -= sum(sizes[target_address].values())
            state.send(target_address, AcquireReplicas(who_has=who_has,
                                                       nbytes=sizes[target_address]))
        self._answer(state)

    def _held_only_here(self, state: Center, worker: WorkerInfo) -> list[str]:
        unique = []
        for key in worker.has_what:
            ts = state.tasks.get(key)
            if ts is None or ts.state != "memory":
                continue
            if all(holder in self.retiring for holder in ts.who_has):
                unique.append(key)
            else:
                self.copies.pop(key, None)
        return unique

    def _done_moving(self, state: Center, worker: WorkerInfo) -> None:
        closes = any(worker.address in r.waiting and r.close for r in self.requests)
        if closes and worker.address in self.closable:
            self.closing.add(worker.address)
            state.send(worker.address, CloseWorker(reason="retired: its data is on other "
                                                          "workers"))
            return
        # Nothing more to do here: whoever started it stops it. It stays, unused.
        name = self.retiring.pop(worker.address)
        for request in self.requests:
            if worker.address in request.waiting:
                request.waiting.discard(worker.address)
                request.retired[worker.address] = name

    def _gone(self, address: str) -> None:
        name = self.retiring.pop(address)
        closed = address in self.closing
        self.closing.discard(address)
        self.closable.discard(address)
        for request in self.requests:
            if address in request.waiting:
                request.waiting.discard(address)
                if closed:
                    request.retired[address] = name
                else:
                    request.failed[name] = "it left before its retirement finished"

    def _keep(self, state: Center, worker: WorkerInfo, why: str, sid: str) -> None:
        del self.retiring[worker.address]
        worker.status = "running"
        state.fill(worker, sid)
        for request in self.requests:
            if worker.address in request.waiting:
                request.waiting.discard(worker.address)
                request.failed[worker.name] = why

    def _answer(self, state: Center) -> None:
        for request in [r for r in self.requests if not r.waiting]:
            self.requests.remove(request)
            if request.client:
                state.send(request.client, RetireWorkersReply(
                    id=request.id, retired=request.retired, failed=request.failed))
