"""dask's ``MultiLock``: one request for several named locks at once, or for ``num_locks`` of
them, held together until released. A plain state machine, as the other primitives
(``coordination``): requests, timeouts and departures in, replies out.

Each lock name has a line of requests, first come first served; the request at the head of a
line holds that lock. A request joins the line of every lock it names in one step (the
shortest lines first, as dask's), and is granted once it heads as many lines as it needs;
then it leaves the lines it does not head. Two requests that both wait are in the same order
in every line they share, so a request for many locks is never overtaken for good by
requests for a few (no starvation) and two requests never wait on each other (no deadlock):
the earliest waiting request heads all its lines as soon as their holders release.

A request belongs to the client connection that made it: when that client leaves, its
waits are dropped and its locks released, as with ``Lock``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dist_protocol.messages import Coordinate, CoordinateReply



class MultiLockRefused(ValueError):
    """A request that cannot be done as asked (answered ``error``, saying why)."""


@dataclass
class LockRequest:
    client: str
    msg: Coordinate  # its acquire (replied to once granted, or on timeout)
    names: list[str]  # the locks asked for, without repeats
    needed: int  # how many of them it must head to be granted
    heads: set[str] = field(default_factory=set)  # the lines it heads now
    granted: bool = False

    @property
    def lease(self) -> str:
        assert self.msg.lease is not None
        return self.msg.lease


class MultiLocks:
    """The lines of every lock name, and the requests in them, by lease."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}  # lock name -> leases, the holder first
        self.requests: dict[str, LockRequest] = {}  # lease -> its request
        self.by_client: dict[str, set[str]] = {}  # client -> its leases
        self._out: list[tuple[str, CoordinateReply]] = []

    # -- entry points (each returns the replies to send, as (client, reply)) ----------------------
    def request(self, client: str, msg: Coordinate) -> list[tuple[str, CoordinateReply]]:
        if msg.action == "acquire":
            self._acquire(client, msg)
        elif msg.action == "release":
            self._release(client, msg)
        elif msg.action == "count":
            self._reply(client, msg, count=sum(1 for line in self.lines.values() if line))
        else:
            raise MultiLockRefused(f"a multi-lock has no action {msg.action!r}; known: "
                                    "acquire, release, count")
        return self._take()

    def timed_out(self, client: str, request_id: int) -> list[tuple[str, CoordinateReply]]:
        for lease in self.by_client.get(client, ()):
            request = self.requests[lease]
            if request.msg.id == request_id and not request.granted:
                self._reply(client, request.msg, "timeout")
                self._withdraw(request)
                break
        return self._take()

    def client_left(self, client: str) -> list[tuple[str, CoordinateReply]]:
        """Its locks are released and its waits dropped (nobody is left to answer)."""
        for lease in sorted(self.by_client.get(client, ())):
            self._withdraw(self.requests[lease])
        return self._take()

    def waits_for(self, client: str, request_id: int) -> bool:
        return any(self.requests[lease].msg.id == request_id
                   and not self.requests[lease].granted
                   for lease in self.by_client.get(client, ()))

    def validate(self) -> None:
        """Every request is in the lines of the locks it asked for (granted: only those it
        holds), heads exactly the lines it is first in, and is granted once it heads enough."""
        for name, line in self.lines.items():
            assert line, name  # an empty line is forgotten
            assert len(set(line)) == len(line), (name, line)
            for lease in line:
                assert name in self.requests[lease].names, (name, lease)
        clients: dict[str, set[str]] = {}
        for lease, request in self.requests.items():
            clients.setdefault(request.client, set()).add(lease)
            queued = {name for name, line in self.lines.items() if lease in line}
            heads = {name for name, line in self.lines.items() if line[0] == lease}
            assert heads == request.heads, (lease, heads, request.heads)
            if request.granted:
                assert queued == heads and len(heads) == request.needed, (lease, queued)
            else:
                assert queued == set(request.names) and len(heads) < request.needed, lease
        assert clients == self.by_client, (clients, self.by_client)

    def describe(self) -> list[dict[str, object]]:
        return [{"kind": "multi-lock", "name": name, "items": 0, "leases": 1, "set": False,
                 "subscribers": 0, "waiting": len(line) - 1}
                for name, line in sorted(self.lines.items())]

    # -- actions ---------------------------------------------------------------------------------
    def _acquire(self, client: str, msg: Coordinate) -> None:
        names = list(dict.fromkeys(msg.names))  # (repeats asked once, in their first place)
        if not names or not all(names):
            raise MultiLockRefused("a multi-lock's acquire names one lock or more, each a "
                                    f"non-empty string, not {msg.names!r}")
        if not msg.lease:
            raise MultiLockRefused("a multi-lock's acquire needs a lease id")
        if msg.lease in self.requests:
            raise MultiLockRefused(f"multi-lock lease {msg.lease!r} is already held or "
                                    "waiting (a MultiLock is not re-entrant)")
        needed = len(names) if msg.limit is None else msg.limit
        if not 1 <= needed <= len(names):
            raise MultiLockRefused(f"a multi-lock's num_locks is between 1 and the {len(names)} "
                                    f"locks named, not {needed}")
        request = LockRequest(client, msg, names, needed)
        self.requests[msg.lease] = request
        self.by_client.setdefault(client, set()).add(msg.lease)
        # The shortest lines first: a request that can be granted at once takes free locks
        for name in sorted(names, key=lambda name: len(self.lines.get(name, ()))):
            line = self.lines.setdefault(name, [])
            line.append(msg.lease)
            if len(line) == 1:
                request.heads.add(name)
        if len(request.heads) >= needed:
            self._grant(request)
        elif msg.timeout == 0:
            self._reply(client, msg, "timeout")
            self._withdraw(request)

    def _release(self, client: str, msg: Coordinate) -> None:
        request = self.requests.get(msg.lease or "")
        if request is None or request.client != client or not request.granted:
            raise MultiLockRefused(f"multi-lock lease {msg.lease!r} is not held by this "
                                    "client (released twice, or never acquired)")
        self._reply(client, msg, count=len(request.heads))
        self._withdraw(request)  # (the requests it lets through are answered after)

    # -- the lines -------------------------------------------------------------------------------
    def _grant(self, request: LockRequest) -> None:
        """``request`` heads enough lines: it keeps ``needed`` of them, leaves the others."""
        request.granted = True
        keep = [name for name in request.names if name in request.heads][:request.needed]
        extra = [name for name in request.names if name not in keep]
        self._reply(request.client, request.msg, count=len(keep))
        self._leave(request, extra)

    def _withdraw(self, request: LockRequest) -> None:
        """``request`` leaves every line (releasing what it holds) and is forgotten."""
        del self.requests[request.lease]
        leases = self.by_client[request.client]
        leases.discard(request.lease)
        if not leases:
            del self.by_client[request.client]
        self._leave(request, request.names)

    def _leave(self, request: LockRequest, names: Iterable[str]) -> None:
        """``request`` leaves the lines of ``names``; the next in a line it headed heads it
        now, and is granted if that was the last it needed."""
        for name in names:
            line = self.lines.get(name)
            if line is None or request.lease not in line:
                continue
            headed = line[0] == request.lease
            line.remove(request.lease)
            request.heads.discard(name)
            if not line:
                del self.lines[name]
            elif headed:
                successor = self.requests[line[0]]
                successor.heads.add(name)
                if not successor.granted and len(successor.heads) >= successor.needed:
                    self._grant(successor)

    def _reply(self, client: str, msg: Coordinate, status: str = "ok",
               count: int | None = None) -> None:
        self._out.append((client, CoordinateReply(id=msg.id, status=status, count=count)))

    def _take(self) -> list[tuple[str, CoordinateReply]]:
        out, self._out = self._out, []
        return out


__all__ = ["LockRequest", "MultiLockRefused", "MultiLocks"]
