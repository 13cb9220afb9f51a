"""dask's ``restart_workers``: some workers restarted through their nannies, the client
answered once each is registered again (protocol feature ``restart-workers``).

A worker is known across its restart by its nanny (``register-worker.nanny``), which starts a
fresh process, at a new address unless its port is fixed: a restart is done when a worker of
that nanny registers that is not the one told to restart. A worker without a nanny cannot be
restarted (it would be gone for good), and a request naming one, or a worker the center does
not know, restarts nothing and is answered with an error, as dask's client raises
``ValueError`` before asking. Pure: the center sends what these return.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dist_protocol.messages import Message, RestartWorker, RestartWorkers, RestartWorkersReply

from .records import WorkerInfo

Request = tuple[str, int]  # (client, request id)
Outgoing = list[tuple[str, Message]]


@dataclass
class RestartWait:
    msg: RestartWorkers
    # as the request named each worker -> (its nanny, the worker told to restart)
    named: dict[str, tuple[str, WorkerInfo]]
    back: set[str]  # the names given whose worker registered again


class WorkerRestarts:
    def __init__(self) -> None:
        self.waits: dict[Request, RestartWait] = {}

    def __bool__(self) -> bool:
        return bool(self.waits)

    def pending(self, client: str, request_id: int) -> bool:
        return (client, request_id) in self.waits

    def request(self, workers: Mapping[str, WorkerInfo], names: Mapping[str, str],
                client: str, msg: RestartWorkers) -> Outgoing:
        """Tell each worker named to restart (``restart-worker``), or answer with an error."""
        found = {given: workers.get(given) or workers.get(names.get(given, ""))
                 for given in msg.workers}
        unknown = [given for given, worker in found.items() if worker is None]
        if unknown:
            return [(client, RestartWorkersReply(
                id=msg.id, error=f"no worker {', '.join(map(repr, unknown))} in the cluster "
                                 f"(known: {', '.join(sorted(workers)) or 'none'})"))]
        alone = [given for given, worker in found.items() if worker is not None
                 and worker.nanny is None]
        if alone:
            return [(client, RestartWorkersReply(
                id=msg.id, error=f"restarting workers requires a nanny: worker"
                                 f"{'s' if len(alone) > 1 else ''} {', '.join(alone)} "
                                 "run without one (started with --no-nanny, or in a "
                                 "client's process)"))]
        if not msg.workers:
            return [(client, RestartWorkersReply(id=msg.id))]
        named = {given: (worker.nanny, worker) for given, worker in found.items()
                 if worker is not None and worker.nanny is not None}
        self.waits[(client, msg.id)] = RestartWait(msg, named, set())
        reason = f"restart_workers requested by {client}"
        told = {worker.address for _, worker in named.values()}
        return [(address, RestartWorker(reason=reason)) for address in sorted(told)]

    def progress(self, workers: Mapping[str, WorkerInfo]) -> Outgoing:
        """The restarts the workers registered now end (after any change of the workers)."""
        out: Outgoing = []
        nannies: dict[str, list[WorkerInfo]] = {}
        for worker in workers.values():
            if worker.nanny is not None:
                nannies.setdefault(worker.nanny, []).append(worker)
        for request, wait in list(self.waits.items()):
            for given, (nanny, old) in wait.named.items():
                if any(worker is not old for worker in nannies.get(nanny, ())):
                    wait.back.add(given)
            if len(wait.back) == len(wait.named):
                del self.waits[request]
                out.append((request[0], _reply(wait)))
        return out

    def timed_out(self, client: str, request_id: int) -> Outgoing:
        wait = self.waits.pop((client, request_id), None)
        return [] if wait is None else [(client, _reply(wait))]

    def client_left(self, client: str) -> None:
        for request in [r for r in self.waits if r[0] == client]:
            del self.waits[request]


def _reply(wait: RestartWait) -> RestartWorkersReply:
    return RestartWorkersReply(id=wait.msg.id, status={
        given: "OK" if given in wait.back else "timed out" for given in wait.msg.workers})


__all__ = ["RestartWait", "WorkerRestarts"]
