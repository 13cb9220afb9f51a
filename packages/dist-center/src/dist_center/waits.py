"""Requests the center answers when what they wait for holds (protocol feature ``waits``), so
that no client asks the same question again and again.

- ``cluster-info`` with ``min_workers``: answered once that many workers are registered;
- ``scatter-plan`` with ``timeout``: answered once some worker can take the data (none could
  when it came);
- ``replicate`` with ``id``: answered by ``replicate-reply`` once each key is on its ``n``
  workers (``ok``), or at once when one of its keys leaves memory (``gone``: released, lost,
  or being computed again), so that no wait outlives what it waits for.

Each is answered anyway when its ``timeout`` passes (the server's timer: ``WaitTimedOut``),
with what holds then, and dropped with its client's connection. ``progress`` runs at the end of
every step of the center: the events that can end a wait (a worker registering, leaving or
changing status; a copy landing; a key leaving memory) have happened by then. It looks at the
waits those events concern, not at every wait: ``touched`` names the keys whose copies changed,
``workers_changed`` that the workers did.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dist_protocol.messages import (ClusterInfo, ClusterInfoReply, Message, Replicate,
                                    ReplicateReply, ScatterPlan, ScatterPlanReply)

from . import queries
from .records import CenterView

# (client, op, request id): ids are the client's, unique per op among its open requests.
Request = tuple[str, str, int]
Outgoing = list[tuple[str, Message]]


@dataclass
class ReplicaWait:
    msg: Replicate
    copies: int  # the copies each key needs: ``n``, at most the workers registered
    short: set[str] = field(default_factory=set)  # keys with fewer copies than that


class Waits:
    """The waits not answered yet. The handlers below decide; the center sends what they
    return (``(client, message)`` pairs)."""

    def __init__(self) -> None:
        self.workers: dict[Request, ClusterInfo] = {}
        self.plans: dict[Request, ScatterPlan] = {}
        self.replicas: dict[Request, ReplicaWait] = {}
        self.watched: dict[str, set[Request]] = {}  # key -> the replicate waits on it
        self.touched: set[str] = set()  # watched keys whose copies changed in this step
        self.workers_changed = False  # in this step

    def __bool__(self) -> bool:
        return bool(self.workers or self.plans or self.replicas)

    def pending(self, client: str, op: str, request: int) -> bool:
        """Whether that request waits (the server then sets its timer)."""
        key = (client, op, request)
        return key in self.workers or key in self.plans or key in self.replicas

    def touch(self, key: str) -> None:
        """The copies of ``key`` changed (one landed, or it left memory)."""
        if key in self.watched:
            self.touched.add(key)

    # -- requests -------------------------------------------------------------------------------
    def cluster_info(self, view: CenterView, client: str, msg: ClusterInfo
                     ) -> Outgoing:
        if msg.min_workers is None or len(view.workers) >= msg.min_workers or msg.timeout == 0:
            return [(client, _cluster_info_reply(view, msg))]
        self.workers[(client, msg.op, msg.id)] = msg
        return []

    def plan_waits(self, view: CenterView, client: str, msg: ScatterPlan) -> bool:
        """Whether a ``scatter-plan`` that no worker can take now waits for one."""
        if not msg.timeout:
            return False
        self.plans[(client, msg.op, msg.id)] = msg
        return True

    def replicate(self, view: CenterView, client: str, msg: Replicate
                  ) -> Outgoing:
        """A ``replicate`` with an id, its copies ordered already."""
        assert msg.id is not None
        wait = ReplicaWait(msg, max(1, min(msg.n, queries.replica_workers(view, msg))))
        request = (client, msg.op, msg.id)
        if request in self.replicas:  # the same id again: the later request replaces it
            self._forget_replicas(request)
        answer = self._replicas_check(view, request, wait, msg.keys)
        if answer is not None:
            return [(client, answer)]
        if msg.timeout == 0:
            return [(client, _replicate_reply(msg, "timeout", wait))]
        self.replicas[request] = wait
        for key in msg.keys:
            self.watched.setdefault(key, set()).add(request)
        return []

    # -- events -----------------------------------------------------------------------------------
    def progress(self, view: CenterView) -> tuple[Outgoing,
                                                  list[tuple[str, ScatterPlan]]]:
        """The waits this step's events ended: replies to send, and the scatter plans that
        can be made now (making one changes the center's tasks: the center does it)."""
        out: Outgoing = []
        for request, msg in list(self.workers.items()):
            if len(view.workers) >= (msg.min_workers or 0):
                del self.workers[request]
                out.append((request[0], _cluster_info_reply(view, msg)))
        plans = []
        for request, plan in list(self.plans.items()):
            if queries.scatter_targets(view, plan):
                del self.plans[request]
                plans.append((request[0], plan))
        if self.replicas and (self.touched or self.workers_changed):
            out.extend(self._replicas_progress(view))
        self.touched.clear()
        self.workers_changed = False
        return out, plans

    def timed_out(self, view: CenterView, client: str, op: str, request_id: int
                  ) -> Outgoing:
        request = (client, op, request_id)
        info = self.workers.pop(request, None)
        if info is not None:
            return [(client, _cluster_info_reply(view, info))]
        plan = self.plans.pop(request, None)
        if plan is not None:
            return [(client, ScatterPlanReply(id=request_id, targets={}))]
        wait = self.replicas.get(request)
        if wait is not None:
            self._forget_replicas(request)
            return [(client, _replicate_reply(wait.msg, "timeout", wait, sorted(wait.short)))]
        return []

    def client_left(self, client: str) -> None:
        """Its waits go: nobody would read their answers."""
        for table in (self.workers, self.plans):
            for request in [r for r in table if r[0] == client]:
                del table[request]
        for request in [r for r in self.replicas if r[0] == client]:
            self._forget_replicas(request)

    def validate(self, view: CenterView) -> None:
        """Assert that every wait is indexed by its keys and nothing else is, and that none
        should have been answered already (the center's tests call this after each step)."""
        expected: dict[str, set[Request]] = {}
        for request, wait in self.replicas.items():
            for key in wait.msg.keys:
                expected.setdefault(key, set()).add(request)
            assert 1 <= wait.copies <= max(1, len(view.workers)), (request, wait)
        assert self.watched == expected, (self.watched, expected)
        for request, info in self.workers.items():
            assert len(view.workers) < (info.min_workers or 0), request

    def describe(self) -> dict[str, int]:
        """How many of each wait are pending, for the dashboard and tests."""
        return {"cluster-info": len(self.workers), "scatter-plan": len(self.plans),
                "replicate": len(self.replicas), "keys watched": len(self.watched)}

    # -- replicas ---------------------------------------------------------------------------------
    def _replicas_progress(self, view: CenterView) -> Outgoing:
        out: Outgoing = []
        if self.workers_changed:  # fewer workers may need fewer copies; any key may be gone
            checks = {request: list(wait.msg.keys) for request, wait in self.replicas.items()}
            for wait in self.replicas.values():
                wait.copies = max(1, min(wait.copies, len(view.workers)))
        else:
            checks = {}
            for key in self.touched:
                for request in self.watched.get(key, ()):
                    checks.setdefault(request, []).append(key)
        for request, keys in checks.items():
            wait = self.replicas[request]
            answer = self._replicas_check(view, request, wait, keys)
            if answer is not None:
                self._forget_replicas(request)
                out.append((request[0], answer))
        return out

    def _replicas_check(self, view: CenterView, request: Request, wait: ReplicaWait,
                        keys: list[str]) -> ReplicateReply | None:
        """Look again at ``keys`` of the wait: its answer if that ends it."""
        gone = []
        for key in keys:
            ts = view.tasks.get(key)
            if ts is None or ts.state != "memory":
                gone.append(key)
            elif queries.replicas(ts, wait.msg) >= wait.copies:
                wait.short.discard(key)
            else:
                wait.short.add(key)
        if gone:
            return _replicate_reply(wait.msg, "gone", wait, sorted(set(gone)))
        if not wait.short:
            return _replicate_reply(wait.msg, "ok", wait)
        return None

    def _forget_replicas(self, request: Request) -> None:
        wait = self.replicas.pop(request)
        for key in wait.msg.keys:
            waiting = self.watched.get(key)
            if waiting is not None:
                waiting.discard(request)
                if not waiting:
                    del self.watched[key]


def _cluster_info_reply(view: CenterView, msg: ClusterInfo) -> ClusterInfoReply:
    return ClusterInfoReply(id=msg.id, workers=queries.worker_table(view),
                            started=view.started)


def _replicate_reply(msg: Replicate, status: str, wait: ReplicaWait,
                     keys: list[str] | None = None) -> ReplicateReply:
    assert msg.id is not None
    return ReplicateReply(id=msg.id, status=status, n=wait.copies, keys=list(keys or ()))


__all__ = ["ReplicaWait", "Request", "Waits"]
