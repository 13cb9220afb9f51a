"""Answers the center gives from what it knows, changing nothing: who holds which key, where
scattered data should go, which copies to make, the workers' table. Pure functions over a
``CenterView``."""
from __future__ import annotations

import itertools

from dist_protocol.messages import AcquireReplicas, Replicate, ScatterPlan, WhoHas, WhoHasReply

from .placement import named
from .records import CenterView, TaskState
from .worker_feed import cannot_spill


def who_has(view: CenterView, msg: WhoHas) -> WhoHasReply:
    answer = {}
    for key in msg.keys:
        ts = view.tasks.get(key)
        answer[key] = sorted(ts.who_has) if ts is not None else []
    return WhoHasReply(id=msg.id, who_has=answer)


def scatter_targets(view: CenterView, msg: ScatterPlan) -> dict[str, list[str]]:
    """Workers for each key: every running worker to ``broadcast``, else one each, round
    robin over the workers holding the least so that scattered data spreads out. Empty when
    no running worker is allowed.

    A value as large as a worker's memory limit goes only to workers with room for it: the
    one receiving it would pass its limit and be restarted, losing all it holds. When no
    worker has the room, the plan names them all and the client refuses to send it."""
    pool = [w for w in view.workers.values() if w.status == "running"]
    if msg.workers:
        pool = named(pool, msg.workers, view.names)
    if not pool:
        return {}
    pool.sort(key=lambda w: (w.nbytes, len(w.has_what), w.address))
    ring = itertools.cycle(pool)
    smallest_limit = min((w.memory_limit for w in pool if w.memory_limit), default=0)
    targets = {}
    for key, nbytes in msg.keys.items():
        if not smallest_limit or nbytes < smallest_limit:  # fits anywhere
            targets[key] = ([w.address for w in pool] if msg.broadcast
                            else [next(ring).address])
            continue
        roomy = [w for w in pool if not w.memory_limit or nbytes < w.memory_limit] or pool
        if msg.broadcast:
            targets[key] = [w.address for w in roomy]
            continue
        worker = next(ring)
        for _ in range(len(pool)):
            if worker in roomy:
                break
            worker = next(ring)
        targets[key] = [worker.address]
    return targets


def replicas(ts: TaskState, msg: Replicate) -> int:
    """The copies of ``ts`` that count for ``msg``: on any worker, or on those it names."""
    if msg.workers is None:
        return len(ts.who_has)
    return sum(1 for address in msg.workers if address in ts.who_has)


def replica_workers(view: CenterView, msg: Replicate) -> int:
    """How many workers the copies of ``msg`` may be on."""
    if msg.workers is None:
        return len(view.workers)
    return sum(1 for address in set(msg.workers) if address in view.workers)


def replica_orders(view: CenterView, msg: Replicate) -> dict[str, AcquireReplicas]:
    """Per worker, the keys in memory it should copy so that each is on ``msg.n`` workers."""
    orders: dict[str, dict[str, list[str]]] = {}
    nbytes: dict[str, dict[str, int]] = {}
    running = [w for w in view.workers.values() if w.status == "running"
               and (msg.workers is None or w.address in msg.workers)]
    for key in msg.keys:
        ts = view.tasks.get(key)
        if ts is None or ts.state != "memory":
            continue
        missing = max(0, msg.n - replicas(ts, msg))
        others = sorted((w for w in running if w.address not in ts.who_has),
                        key=lambda w: (w.nbytes, w.address))
        for worker in others[:missing]:
            orders.setdefault(worker.address, {})[key] = sorted(ts.who_has)
            nbytes.setdefault(worker.address, {})[key] = ts.nbytes
    return {address: AcquireReplicas(who_has=who_has, nbytes=nbytes[address])
            for address, who_has in orders.items()}


def worker_table(view: CenterView) -> list[dict]:
    """``cluster-info-reply``'s workers: tasks waiting ahead of their inputs on a worker are
    counted apart (``ahead``), not as processing (they hold no thread there yet); the keys
    of those processing are listed too (``processing_keys``, dask's ``processing()``)."""
    return [{"address": w.address, "name": w.name, "nthreads": w.nthreads,
             "memory_limit": w.memory_limit, "status": w.status,
             # why it cannot spill its values to its disk (it pauses at the spill threshold)
             "cannot_spill": cannot_spill(w),
             "processing": len(w.processing) - len(w.ahead or ()), "ahead": len(w.ahead or ()),
             # (a worker is sent about as many tasks as it has threads: a short list)
             "processing_keys": [key for key in w.processing if key not in (w.ahead or ())],
             "keys": len(w.has_what), "nbytes": w.nbytes, "metrics": w.metrics,
             "resources": w.resources, "environment": w.environment, "nanny": w.nanny}
            for w in view.workers.values()]
