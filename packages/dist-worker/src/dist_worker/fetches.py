"""The inputs a worker fetches from its peers: who waits for each, who holds it, what is in
flight.

A task's input not held here is fetched from the peers the center names (``want``), and so is
a copy the center asks for (``want_replica``). ``fetch_plan`` plans the requests; this class
keeps what the plan is made from and what the requests set going: the keys in flight, from
which peer, and their bytes (bounded by ``incoming_bytes_limit``), the peers already tried
for a key, and the requests each peer has not answered yet. It knows nothing of tasks but
their keys: ``WorkerState`` says which task waits for which input, and makes the tasks ready
that ``arrived`` names.
"""
from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator

from .events import Fetch
from .fetch_plan import MAX_KEYS_PER_FETCH, Missing, plan_requests

# Stands in the waiters of a key fetched as a replica rather than for a task.
REPLICA = "<replica>"

Log = Callable[[str, str, str], None]  # (key, start, finish), into the worker's task log


class Fetches:
    __slots__ = ("incoming_bytes_limit", "waiters", "who_has", "sizes", "tried", "in_flight",
                 "flight_sizes", "incoming_bytes", "busy_peers", "_log")

    def __init__(self, incoming_bytes_limit: int | None, log: Log):
        self.incoming_bytes_limit = incoming_bytes_limit  # None: only per-request bounds
        self.waiters: dict[str, set[str]] = {}  # input key -> tasks (or REPLICA) waiting on it
        self.who_has: dict[str, list[str]] = {}  # for inputs we still need
        self.sizes: dict[str, int] = {}  # their sizes, as the center told them
        self.tried: dict[str, set[str]] = {}  # input key -> peers that failed us
        self.in_flight: dict[str, str] = {}  # input key -> peer it is being fetched from
        self.flight_sizes: dict[str, int] = {}  # in-flight key -> its size when asked for
        self.incoming_bytes = 0  # the sum of flight_sizes
        self.busy_peers: dict[str, int] = {}  # peer -> requests to it not answered yet
        self._log = log

    def want(self, key: str, task_key: str, holders: list[str], size: int) -> None:
        """``task_key`` waits for ``key``, which ``holders`` hold (as the center says now)."""
        self.waiters.setdefault(key, set()).add(task_key)
        self.who_has[key] = holders
        self.sizes[key] = size
        source = self.in_flight.get(key)
        if source is not None and source not in holders:
            # The center no longer names the peer we are waiting for (it left or hangs, and
            # the input was made again elsewhere): ask the holders it names instead.
            self.landed(key)
            source = None
        if source is None:
            self.tried.pop(key, None)  # fresh who_has: every holder deserves a try

    def want_replica(self, key: str, holders: list[str]) -> None:
        """The center wants a copy of ``key`` here, from ``holders``."""
        self.waiters.setdefault(key, set()).add(REPLICA)
        self.who_has[key] = holders

    def unwait(self, key: str, task_key: str) -> None:
        """``task_key`` no longer waits for ``key``; with nobody waiting, it is forgotten."""
        waiting = self.waiters.get(key)
        if waiting is not None:
            waiting.discard(task_key)
            if not waiting:
                del self.waiters[key]
                self._forget(key)

    def arrived(self, key: str) -> Iterable[str]:
        """``key`` is held here now: whoever waited for it (tasks' keys, or ``REPLICA``)."""
        waiting = self.waiters.pop(key, ())
        self._forget(key)
        return waiting

    def received(self, key: str, peer: str) -> bool:
        """``peer`` sent ``key``: whether anybody still waits for it."""
        if self.in_flight.get(key) == peer:
            self.landed(key)
        return key in self.waiters

    def answered(self, peer: str) -> None:
        """A request to ``peer`` was answered (with data or not)."""
        left = self.busy_peers.pop(peer, 0) - 1
        if left > 0:
            self.busy_peers[peer] = left

    def landed(self, key: str) -> None:
        """``key`` is no longer in flight (arrived, failed, or asked of another peer)."""
        del self.in_flight[key]
        self.incoming_bytes -= self.flight_sizes.pop(key, 0)

    def not_fetched(self, peer: str, keys: list[str]) -> list[str]:
        """``peer`` could not give ``keys``: they are asked of another holder, if any. The
        keys that every holder known failed for, which are the center's to decide on."""
        lost = []
        for key in keys:
            if self.in_flight.get(key) == peer:
                self.landed(key)
                self._log(key, "flight", "fetch")
            self.tried.setdefault(key, set()).add(peer)
            holders = [w for w in self.who_has.get(key, ()) if w not in self.tried[key]]
            if not holders and key in self.waiters:
                lost.append(key)
                # Only an extra copy was wanted: give up on it rather than wait for ever.
                self.give_up_replica(key)
        return lost

    def give_up_replica(self, key: str) -> None:
        """If only a copy of ``key`` was wanted, it is wanted no more."""
        if self.waiters.get(key) == {REPLICA}:
            del self.waiters[key]
            self._forget(key)

    def requests(self, keys: Iterable[str], held: Container[str],
                 one_at_a_time: bool) -> list[Fetch]:
        """Ask peers for those of ``keys`` neither ``held`` nor in flight, in their order (the
        order their tasks came in), as ``fetch_plan`` plans the requests."""
        requests = plan_requests(self._missing(keys, held), self.busy_peers,
                                 self.incoming_bytes, bool(self.in_flight), one_at_a_time,
                                 self.incoming_bytes_limit)
        asked = self.busy_peers
        fetches = []
        for peer, to_peer in requests.items():
            for request in to_peer:
                for start in range(0, len(request), MAX_KEYS_PER_FETCH):
                    chunk = request[start:start + MAX_KEYS_PER_FETCH]
                    for key in chunk:
                        self.in_flight[key] = peer
                        size = self.flight_sizes[key] = self.sizes.get(key, 0)
                        self.incoming_bytes += size
                        self._log(key, "fetch", "flight")
                    asked[peer] = asked.get(peer, 0) + 1
                    fetches.append(Fetch(peer, chunk))
        return fetches

    def _missing(self, keys: Iterable[str], held: Container[str]) -> Iterator[Missing]:
        """Those of ``keys`` a task here waits for that are neither held nor in flight, with
        the holders not yet tried (those with none left are the center's to decide on)."""
        for key in keys:
            if key in held or key in self.in_flight or key not in self.waiters:
                continue
            tried = self.tried.get(key, ())
            holders = [w for w in self.who_has.get(key, ()) if w not in tried]
            if holders:
                yield key, holders, self.sizes.get(key, 0)

    def _forget(self, key: str) -> None:
        self.who_has.pop(key, None)
        self.sizes.pop(key, None)
        self.tried.pop(key, None)

    def clear(self) -> None:
        """Forget everything (the cluster was restarted)."""
        self.in_flight.clear()
        self.flight_sizes.clear()
        self.incoming_bytes = 0
        self.who_has.clear()
        self.sizes.clear()
        self.tried.clear()
        self.waiters.clear()
        self.busy_peers.clear()

    def validate(self, held: Container[str]) -> None:
        assert set(self.flight_sizes) == set(self.in_flight)
        assert self.incoming_bytes == sum(self.flight_sizes.values())
        for key in self.waiters:
            assert key not in held, key
