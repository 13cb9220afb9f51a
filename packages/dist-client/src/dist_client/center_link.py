"""A cluster manager's own connection to its center: what the center would scale to, graceful
retirement, the workers' table. Separate from any Executor, so managing a cluster never
depends on a user's connection (nor holds their keys)."""
from __future__ import annotations

from collections.abc import Callable, Mapping

from dist_protocol.comm import Comm, connect
from dist_protocol.errors import CommClosedError
from dist_protocol.messages import (AdaptiveTarget, AdaptiveTargetReply, ClusterInfo,
                                    ClusterInfoReply, Message, RetireWorkers,
                                    RetireWorkersReply)
from dist_protocol.replies import PendingReplies
from dist_protocol.security import ssl_context

from .core.loop import LoopThread

FEATURE = "retire-workers"


class CenterLink:
    def __init__(self, address: str, token: str | None = None,
                 security: Mapping[str, str | None] | None = None, timeout: float = 10.0):
        self.address = address
        self.token = token
        self.timeout = timeout
        tls = dict(security or {})
        self._ssl = ssl_context(False, tls.get("tls_cert"), tls.get("tls_key"), tls.get("tls_ca"))
        self._io: LoopThread | None = None
        self._comm: Comm | None = None
        self._replies = PendingReplies()

    async def _connect(self) -> Comm:
        comm = await connect(self.address, role="client", token=self.token,
                             name="cluster-manager", ssl_context=self._ssl, timeout=self.timeout)
        if FEATURE not in comm.features:
            comm.close("the center cannot retire workers")
            raise RuntimeError(f"the center at {self.address} does not implement adaptive "
                               "scaling and graceful retirement (feature 'retire-workers'): "
                               "upgrade dcenter")
        comm.set_handler(self._replies.received_all)
        comm.on_close(lambda closed: self._replies.fail(
            CommClosedError(f"lost the center at {self.address}"), closed))
        return comm

    async def _ask(self, make: Callable[[int], Message], timeout: float | None) -> Message:
        if self._comm is None or self._comm.is_closed:
            self._comm = await self._connect()
        return await self._replies.request(self._comm, make, timeout)

    def ask(self, make: Callable[[int], Message], timeout: float | None = None) -> Message:
        if self._io is None:
            self._io = LoopThread(name="dist-cluster-link")
        return self._io.run(self._ask(make, timeout or self.timeout))

    def adaptive_target(self, target_duration: float = 5.0) -> AdaptiveTargetReply:
        reply = self.ask(lambda i: AdaptiveTarget(id=i, target_duration=target_duration))
        assert isinstance(reply, AdaptiveTargetReply)
        return reply

    def retire_workers(self, workers: list[str], close: bool = True,
                       timeout: float = 300.0) -> RetireWorkersReply:
        reply = self.ask(lambda i: RetireWorkers(id=i, workers=workers, close=close), timeout)
        assert isinstance(reply, RetireWorkersReply)
        return reply

    def workers(self) -> list[dict]:
        reply = self.ask(lambda i: ClusterInfo(id=i))
        assert isinstance(reply, ClusterInfoReply)
        return reply.workers

    def close(self) -> None:
        io, self._io = self._io, None
        if io is None:
            return
        comm = self._comm
        if comm is not None:
            io.call(comm.close, "cluster closing")
        io.stop()
