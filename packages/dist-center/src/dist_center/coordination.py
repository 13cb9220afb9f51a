"""Named coordination primitives held by the center: queues, variables, locks, semaphores,
events, pub/sub topics and event logs. A plain state machine: requests and departures in,
orders out.

The center is the authority: every primitive lives here, by name, and the clients (Python or
not) act on it with ``coordinate`` requests. A request that cannot be done yet (a get from an
empty queue, an acquire of a held lock, a wait for an event) is answered later, when it can be
done, or with status ``timeout`` when the server's timer for it fires (``timed_out``); nothing
here polls. Leases belong to the client connection that took them and go with it.

Values are opaque payloads (msgpack for any language, pickles between Python peers) and never
opened here; each keeps the ``pickled_with`` its putter stated, passed on to its readers, who
refuse code pickled by another Python. A value that refers to keys (futures put into a queue,
set into a variable) holds those keys while it is held, as a client would: ``Want``/``Unwant``
orders name the holder, ``<kind name>`` for what the primitive keeps (one of the center's own
holders, as datasets' in ``sharing``); a getter becomes a wanter in turn.

An event log (kind ``log``, dask's ``log_event``/``get_events``) is a topic that remembers:
its last ``log_length`` entries are kept for later readers, as dask's scheduler keeps
``distributed.admin.log-length`` events per topic, and each entry also goes to the
subscribers. The clients stamp the entries' times, so the center stays without a clock.
Entries are msgpack only, as dask asks of its events: any client reads them, and no code
travels through a log.
"""
from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

from dist_protocol.messages import PRIMITIVE_KINDS, Coordinate, CoordinateReply, Published
from dist_protocol.serialize import Payload, serialize

from .multi_locks import MultiLockRefused, MultiLocks

# Entries an event log keeps per topic (dask's ``distributed.admin.log-length``).
LOG_LENGTH = 10_000


@dataclass
class Send:
    to: str
    message: Any


@dataclass
class Want:
    """``holder`` holds ``keys`` now (a client, or a primitive's own name)."""
    holder: str
    keys: list[str]


@dataclass
class Unwant:
    holder: str
    keys: list[str]


Order = Union[Send, Want, Unwant]
Request = tuple[str, int]  # (client, request id)


@dataclass
class Waiter:
    client: str
    msg: Coordinate


@dataclass
class Primitive:
    kind: str
    name: str
    # queue: items (value, keys, pickled_with); variable: one item at most
    items: collections.deque = field(default_factory=collections.deque)
    limit: int = 0  # queue maxsize (0: unbounded), semaphore leases
    leases: dict[str, str] = field(default_factory=dict)  # lease id -> holding client
    is_set: bool = False  # event
    subscribers: set[str] = field(default_factory=set)  # topic
    getters: collections.deque = field(default_factory=collections.deque)  # of Waiter
    putters: collections.deque = field(default_factory=collections.deque)  # of Waiter
    held_keys: collections.Counter = field(default_factory=collections.Counter)

    @property
    def holder(self) -> str:
        return f"<{self.kind} {self.name}>"  # the center's own, as a dataset's (sharing.py)

    def idle(self) -> bool:
        """Nothing to remember: a later use starts afresh (so names do not pile up)."""
        return not (self.items or self.leases or self.is_set or self.subscribers
                    or self.getters or self.putters)


class CoordinationError(ValueError):
    pass


def _required_value(prim: Primitive, msg: Coordinate, action: str) -> Payload:
    """The value ``msg`` carries, which its ``action`` (put, set, publish…) cannot go without."""
    if msg.value is None:
        raise CoordinationError(f"{prim.kind} {prim.name!r}: {action} needs a value")
    return msg.value


def _value_without_futures(prim: Primitive, msg: Coordinate, action: str,
                           what: str) -> Payload:
    """The value a publish or a log's append passes on and keeps no hold of: the futures
    it named would be held by nothing, so it may name none. ``what`` names the value."""
    value = _required_value(prim, msg, action)
    if msg.keys:
        raise CoordinationError(f"{prim.kind} {prim.name!r}: {what} cannot carry futures "
                                "(nothing would hold them); use a Queue")
    return value


class Coordination:
    """The primitives by kind and name (each kind has names of its own, as dask's
    extensions do). ``request`` and ``client_left`` and ``timed_out`` return
    orders: messages to send, and keys to hold or let go for a holder."""

    def __init__(self, key_known: Callable[[str], bool] = lambda key: True,
                 log_length: int = LOG_LENGTH) -> None:
        self.log_length = log_length
        self.primitives: dict[tuple[str, str], Primitive] = {}
        self.key_known = key_known
        self.waiting: dict[Request, Primitive] = {}  # requests answered later
        # What each client has at stake, by primitive: its subscriptions, waits and leases,
        # counted, so that its departure visits those primitives alone. A center keeps event
        # logs for its life, and set events and variables until cleared: visiting every
        # primitive made each departure cost 3.5 us a name kept (355 ms with 100,000 logs).
        self.stakes: dict[str, dict[tuple[str, str], int]] = {}
        self._out: list[Order] = []
        self.multi_locks = MultiLocks()  # dask's MultiLock: several locks in one request
        self._actions: dict[tuple[str, str], Callable[[Primitive, str, Coordinate], None]] = {
            ("queue", "put"): self._queue_put, ("queue", "get"): self._queue_get,
            ("queue", "size"): self._queue_size,
            ("variable", "set"): self._variable_set, ("variable", "get"): self._variable_get,
            ("variable", "delete"): self._variable_delete,
            ("lock", "acquire"): self._acquire, ("lock", "release"): self._release,
            ("lock", "count"): self._lease_count,
            ("semaphore", "acquire"): self._acquire, ("semaphore", "release"): self._release,
            ("semaphore", "count"): self._lease_count,
            ("event", "set"): self._event_set, ("event", "clear"): self._event_clear,
            ("event", "wait"): self._event_wait,
            ("topic", "subscribe"): self._subscribe, ("topic", "unsubscribe"): self._unsubscribe,
            ("topic", "publish"): self._publish,
            ("log", "append"): self._log_append, ("log", "read"): self._log_read,
            ("log", "topics"): self._log_topics,
            ("log", "subscribe"): self._subscribe, ("log", "unsubscribe"): self._unsubscribe,
        }

    # -- entry points -------------------------------------------------------------------------
    def request(self, client: str, msg: Coordinate) -> list[Order]:
        if msg.kind == "multi-lock":
            try:
                return self._sent(self.multi_locks.request(client, msg))
            except MultiLockRefused as exc:
                self._reply(client, msg, "error", error=str(exc))
                return self._take()
        try:
            action = self._actions.get((msg.kind, msg.action))
            if action is None:
                raise CoordinationError(_unknown_action(msg))
            prim = self._primitive(msg)
            unknown = [key for key in msg.keys if not self.key_known(key)]
            if unknown:
                raise CoordinationError(f"{msg.kind} {msg.name!r}: the value refers to keys the "
                                        f"center does not hold: {', '.join(unknown)}")
            action(prim, client, msg)
            self._forget_if_idle(prim)
        except CoordinationError as exc:
            self._reply(client, msg, "error", error=str(exc))
            known = self.primitives.get((msg.kind, msg.name))
            if known is not None:  # made for this request, it holds nothing
                self._forget_if_idle(known)
        return self._take()

    def waits(self, client: str, request_id: int) -> bool:
        """Whether ``client``'s request is to be answered later (the server's timer then
        makes ``timed_out`` happen after its ``timeout``)."""
        return ((client, request_id) in self.waiting
                or self.multi_locks.waits_for(client, request_id))

    def timed_out(self, client: str, request_id: int) -> list[Order]:
        if self.multi_locks.waits_for(client, request_id):
            return self._sent(self.multi_locks.timed_out(client, request_id))
        prim = self.waiting.pop((client, request_id), None)
        if prim is not None:
            for queue in (prim.getters, prim.putters):
                for waiter in list(queue):
                    if waiter.client == client and waiter.msg.id == request_id:
                        queue.remove(waiter)
                        self._unstake(client, prim)
                        self._dropped(prim, queue, waiter)
                        self._reply(client, waiter.msg, "timeout")
            self._forget_if_idle(prim)
        return self._take()

    def client_left(self, client: str) -> list[Order]:
        """Its leases are released (waking the next waiters), its waits and subscriptions go."""
        self._out += self._sent(self.multi_locks.client_left(client))
        for name in self.stakes.pop(client, {}):
            prim = self.primitives[name]
            prim.subscribers.discard(client)
            for queue in (prim.getters, prim.putters):
                for waiter in [w for w in queue if w.client == client]:
                    queue.remove(waiter)
                    self.waiting.pop((client, waiter.msg.id), None)
                    self._dropped(prim, queue, waiter)
            freed = [lease for lease, holder in prim.leases.items() if holder == client]
            for lease in freed:
                del prim.leases[lease]
            if freed:
                self._grant_leases(prim)
            self._forget_if_idle(prim)
        return self._take()

    def validate(self) -> None:
        """The stakes counted are those the primitives hold (tests call this after each step)."""
        found: dict[str, dict[tuple[str, str], int]] = {}
        for name, prim in self.primitives.items():
            holders = [*prim.subscribers, *prim.leases.values(),
                       *(w.client for queue in (prim.getters, prim.putters) for w in queue)]
            for client in holders:
                found.setdefault(client, {})
                found[client][name] = found[client].get(name, 0) + 1
        assert found == self.stakes, (found, self.stakes)
        self.multi_locks.validate()

    def describe(self) -> list[dict[str, Any]]:
        """What is held, for the dashboard and tests."""
        return [{"kind": p.kind, "name": p.name, "items": len(p.items), "leases": len(p.leases),
                 "set": p.is_set, "subscribers": len(p.subscribers),
                 "waiting": len(p.getters) + len(p.putters)}
                for p in self.primitives.values()] + self.multi_locks.describe()

    # -- plumbing -----------------------------------------------------------------------------
    def _primitive(self, msg: Coordinate) -> Primitive:
        if msg.kind not in PRIMITIVE_KINDS:
            raise CoordinationError(f"unknown primitive kind {msg.kind!r}; known: "
                                    f"{', '.join(PRIMITIVE_KINDS)}")
        if not msg.name:
            raise CoordinationError(f"a {msg.kind} needs a name")
        prim = self.primitives.get((msg.kind, msg.name))
        if prim is None:
            prim = self.primitives[msg.kind, msg.name] = Primitive(msg.kind, msg.name)
        return prim

    def _forget_if_idle(self, prim: Primitive) -> None:
        if prim.idle() and self.primitives.get((prim.kind, prim.name)) is prim:
            del self.primitives[prim.kind, prim.name]

    @staticmethod
    def _sent(replies: list[tuple[str, CoordinateReply]]) -> list[Order]:
        return [Send(to, reply) for to, reply in replies]

    def _take(self) -> list[Order]:
        out, self._out = self._out, []
        return out

    def _reply(self, client: str, msg: Coordinate, status: str = "ok",
               value: Payload | None = None, keys: list[str] | None = None,
               count: int | None = None, error: str = "",
               pickled_with: str | None = None) -> None:
        self._out.append(Send(client, CoordinateReply(
            id=msg.id, status=status, value=value, keys=list(keys or ()), count=count,
            error=error, pickled_with=pickled_with)))

    def _wait(self, queue: collections.deque, prim: Primitive, client: str,
              msg: Coordinate) -> None:
        """Answer later; at once with ``timeout`` if the asker would not wait at all."""
        if msg.timeout == 0:
            self._reply(client, msg, "timeout")
            return
        queue.append(Waiter(client, msg))
        self.waiting[(client, msg.id)] = prim
        self._stake(client, prim)

    def _answered(self, waiter: Waiter) -> None:
        prim = self.waiting.pop((waiter.client, waiter.msg.id), None)
        if prim is not None:
            self._unstake(waiter.client, prim)

    def _stake(self, client: str, prim: Primitive) -> None:
        """``client`` subscribed to, waits on or holds a lease of ``prim`` once more."""
        held = self.stakes.setdefault(client, {})
        held[prim.kind, prim.name] = held.get((prim.kind, prim.name), 0) + 1

    def _unstake(self, client: str, prim: Primitive) -> None:
        held = self.stakes[client]
        name = (prim.kind, prim.name)
        held[name] -= 1
        if not held[name]:
            del held[name]
            if not held:
                del self.stakes[client]

    def _dropped(self, prim: Primitive, queue: collections.deque, waiter: Waiter) -> None:
        """A waiting put that will not happen lets go of the keys its value held."""
        if queue is prim.putters:
            self._let_go(prim, waiter.msg.keys)

    def _hold(self, prim: Primitive, keys: list[str]) -> None:
        if keys:
            prim.held_keys.update(keys)
            self._out.append(Want(prim.holder, list(keys)))

    def _hand_over(self, prim: Primitive, client: str, keys: list[str]) -> None:
        """The keys of a value taken out of ``prim`` go to ``client`` (after its reply)."""
        if not keys:
            return
        self._out.append(Want(client, list(keys)))
        self._let_go(prim, keys)

    def _let_go(self, prim: Primitive, keys: list[str]) -> None:
        gone = []
        for key in keys:
            prim.held_keys[key] -= 1
            if prim.held_keys[key] <= 0:
                del prim.held_keys[key]
                gone.append(key)
        if gone:
            self._out.append(Unwant(prim.holder, gone))

    # -- queue --------------------------------------------------------------------------------
    def _queue_put(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        _required_value(prim, msg, "put")
        if msg.limit is not None and not prim.items and not prim.putters:
            prim.limit = msg.limit  # maxsize, as the queue's first user in this life said
        if prim.limit and len(prim.items) >= prim.limit:
            self._hold(prim, msg.keys)  # kept while the put waits
            self._wait(prim.putters, prim, client, msg)
            if msg.timeout == 0:
                self._let_go(prim, msg.keys)
            return
        self._hold(prim, msg.keys)
        prim.items.append((msg.value, list(msg.keys), msg.pickled_with))
        self._reply(client, msg)
        self._serve_queue(prim)

    def _queue_get(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if prim.items and not prim.getters:
            value, keys, pickled_with = prim.items.popleft()
            self._reply(client, msg, value=value, keys=keys, pickled_with=pickled_with)
            self._hand_over(prim, client, keys)
            self._serve_queue(prim)
        else:
            self._wait(prim.getters, prim, client, msg)

    def _queue_size(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        self._reply(client, msg, count=len(prim.items))

    def _serve_queue(self, prim: Primitive) -> None:
        """Match waiting getters with items, and waiting puts with the room made."""
        while True:
            if prim.getters and prim.items:
                waiter = prim.getters.popleft()
                self._answered(waiter)
                value, keys, pickled_with = prim.items.popleft()
                self._reply(waiter.client, waiter.msg, value=value, keys=keys,
                            pickled_with=pickled_with)
                self._hand_over(prim, waiter.client, keys)
            elif prim.putters and not (prim.limit and len(prim.items) >= prim.limit):
                waiter = prim.putters.popleft()
                self._answered(waiter)
                prim.items.append((waiter.msg.value, list(waiter.msg.keys),
                                   waiter.msg.pickled_with))
                self._reply(waiter.client, waiter.msg)
            else:
                return

    # -- variable -----------------------------------------------------------------------------
    def _variable_set(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        _required_value(prim, msg, "set")
        self._hold(prim, msg.keys)
        old = prim.items.popleft() if prim.items else None
        prim.items.append((msg.value, list(msg.keys), msg.pickled_with))
        if old is not None:
            self._let_go(prim, old[1])
        self._reply(client, msg)
        while prim.getters:
            waiter = prim.getters.popleft()
            self._answered(waiter)
            self._give_variable(prim, waiter.client, waiter.msg)

    def _variable_get(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if prim.items:
            self._give_variable(prim, client, msg)
        else:
            self._wait(prim.getters, prim, client, msg)

    def _give_variable(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        value, keys, pickled_with = prim.items[0]
        self._reply(client, msg, value=value, keys=keys, pickled_with=pickled_with)
        if keys:  # the variable keeps its keys; the getter holds them too
            self._out.append(Want(client, list(keys)))

    def _variable_delete(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if prim.items:
            _, keys, _ = prim.items.popleft()
            self._let_go(prim, keys)
        self._reply(client, msg)

    # -- lock and semaphore -------------------------------------------------------------------
    def _acquire(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if not msg.lease:
            raise CoordinationError(f"{prim.kind} {prim.name!r}: acquire needs a lease id")
        if msg.lease in prim.leases:
            raise CoordinationError(f"{prim.kind} {prim.name!r}: lease {msg.lease!r} is "
                                    "already held (a Lock is not re-entrant)")
        limit = 1 if prim.kind == "lock" else (msg.limit or 1)
        if not prim.leases and not prim.getters:
            prim.limit = limit
        elif prim.kind == "semaphore" and limit != prim.limit:
            raise CoordinationError(f"semaphore {prim.name!r} has max_leases={prim.limit}, "
                                    f"not {limit}")
        if len(prim.leases) < prim.limit and not prim.getters:
            prim.leases[msg.lease] = client
            self._stake(client, prim)
            self._reply(client, msg, count=len(prim.leases))
        else:
            self._wait(prim.getters, prim, client, msg)

    def _release(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if not msg.lease or prim.leases.get(msg.lease) != client:
            raise CoordinationError(f"{prim.kind} {prim.name!r}: lease {msg.lease!r} is not "
                                    "held by this client (released twice, or never acquired)")
        del prim.leases[msg.lease]
        self._unstake(client, prim)
        self._reply(client, msg, count=len(prim.leases))
        self._grant_leases(prim)

    def _grant_leases(self, prim: Primitive) -> None:
        while prim.getters and len(prim.leases) < prim.limit:
            waiter = prim.getters.popleft()
            self._answered(waiter)
            prim.leases[waiter.msg.lease] = waiter.client
            self._stake(waiter.client, prim)
            self._reply(waiter.client, waiter.msg, count=len(prim.leases))

    def _lease_count(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        self._reply(client, msg, count=len(prim.leases))

    # -- event --------------------------------------------------------------------------------
    def _event_set(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        prim.is_set = True
        self._reply(client, msg, count=1)
        while prim.getters:
            waiter = prim.getters.popleft()
            self._answered(waiter)
            self._reply(waiter.client, waiter.msg, count=1)

    def _event_clear(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        prim.is_set = False
        self._reply(client, msg, count=0)

    def _event_wait(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if prim.is_set:
            self._reply(client, msg, count=1)
        else:
            self._wait(prim.getters, prim, client, msg)

    # -- topic --------------------------------------------------------------------------------
    def _subscribe(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if client not in prim.subscribers:
            prim.subscribers.add(client)
            self._stake(client, prim)
        self._reply(client, msg, count=len(prim.subscribers))

    def _unsubscribe(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        if client in prim.subscribers:
            prim.subscribers.discard(client)
            self._unstake(client, prim)
        self._reply(client, msg, count=len(prim.subscribers))

    def _publish(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        value = _value_without_futures(prim, msg, "publish", "a published message")
        for subscriber in sorted(prim.subscribers):
            self._out.append(Send(subscriber, Published(topic=prim.name, value=value,
                                                        pickled_with=msg.pickled_with)))
        self._reply(client, msg, count=len(prim.subscribers))

    # -- event log ----------------------------------------------------------------------------
    def _log_append(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        value = _value_without_futures(prim, msg, "append", "an event")
        if value.serializer != "msgpack":
            # (so that any client reads the log, and no code travels through it)
            raise CoordinationError(f"log {prim.name!r}: an event is msgpack, not "
                                    f"{value.serializer}")
        prim.items.append((value, [], None))
        if len(prim.items) > self.log_length:
            prim.items.popleft()
        for subscriber in sorted(prim.subscribers):
            self._out.append(Send(subscriber, Published(topic=prim.name, value=value,
                                                        kind="log")))
        self._reply(client, msg, count=len(prim.items))

    def _log_read(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        self._out.append(Send(client, CoordinateReply(
            id=msg.id, status="ok", count=len(prim.items),
            values=[value for value, _, _ in prim.items])))

    def _log_topics(self, prim: Primitive, client: str, msg: Coordinate) -> None:
        """The names of the logs holding entries (``prim`` is the one the request named)."""
        names = sorted(name for (kind, name), held in self.primitives.items()
                       if kind == "log" and held.items)
        self._reply(client, msg, value=serialize(names, ("msgpack",)), count=len(names))


def _unknown_action(msg: Coordinate) -> str:
    actions = sorted(action for kind, action in _ACTIONS if kind == msg.kind)
    if not actions:
        return (f"unknown primitive kind {msg.kind!r}; known: {', '.join(PRIMITIVE_KINDS)}")
    return f"a {msg.kind} has no action {msg.action!r}; it has: {', '.join(actions)}"


_ACTIONS = set(Coordination()._actions)

__all__ = ["Coordination", "CoordinationError", "Order", "Send", "Unwant", "Want"]
