"""Closed connections are freed at once in the center and the workers.

Every closed connection used to stay in a reference cycle with its 256 KiB receive buffer, and
the servers' raised collector thresholds left those cycles for days: 300 short client sessions
took a center from 42 to 122 MB. Whether a closed connection is freed can only be seen from
inside the process, so this test runs a real ``Center`` and ``Worker`` (the objects ``dcenter``
and ``dworker`` run) on an event loop in a thread, with the cyclic collector off, and checks by
weak references that the connections of finished client sessions are gone. The RSS of real
processes over 10,000 sessions is measured by ``benchmarks/connection_churn.py``.
"""
from __future__ import annotations

import asyncio
import collections
import gc
import operator
import threading
import weakref

import pytest
from dist_center.server import Center
from dist_client import Executor
from dist_protocol.comm import Comm, connect
from dist_protocol.messages import (ClusterInfo, ClusterInfoReply, GetData, KeyInMemory, Session,
                                    SessionReply, Submit, TaskSpec)
from dist_protocol.serialize import deserialize, dumps_function, serialize
from dist_worker.server import Worker

from .conftest import wait_until

pytestmark = pytest.mark.timeout(120)


class ServersInThread:
    """A center and one worker on their own event loop, as their CLIs run them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.center = Center("127.0.0.1:0", heartbeat_timeout=30)
        self.call(self.center.start())
        self.worker = Worker(self.center.address, nthreads=1, port=0)
        self.call(self.worker.start())
        self.call(asyncio.wait_for(self.worker.registered.wait(), 30))

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.call(self.worker.close())
        self.call(self.center.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def servers():
    servers = ServersInThread()
    yield servers
    servers.close()


@pytest.fixture
def tracked_comms(monkeypatch):
    """Weak references to every ``Comm`` made from now on, with the collector off: a
    connection that survives its close is in a cycle (or truly held)."""
    made: list[weakref.ref] = []
    original_init = Comm.__init__

    def tracking_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(weakref.ref(self))
    monkeypatch.setattr(Comm, "__init__", tracking_init)
    gc.collect()
    gc.disable()
    yield made
    gc.enable()


def live(refs: list[weakref.ref], accepted_only: bool = False) -> list[Comm]:
    """The tracked comms still alive; ``accepted_only``: only servers' ends (a listener set
    their ``peer_role``), not the ends the client opened."""
    return [comm for comm in (ref() for ref in refs)
            if comm is not None and (comm.peer_role is not None or not accepted_only)]


def inc(x):
    return x + 1


def assert_all_freed(refs: list[weakref.ref], what: str, accepted_only: bool = False) -> None:
    """Waits (the servers notice a close on their loop) until every tracked comm is gone;
    on failure names the survivors and what holds them."""
    try:
        wait_until(lambda: not live(refs, accepted_only), timeout=15, what=what)
    except AssertionError:
        survivors = live(refs, accepted_only)
        lines = [f"{comm!r} (closed: {comm.is_closed}) held by "
                 f"{[type(r).__name__ for r in gc.get_referrers(comm)]}" for comm in survivors[:3]]
        del survivors
        raise AssertionError(f"{what}: still alive: " + "; ".join(lines)) from None


def test_handshake_only_connections_are_freed_when_closed(servers, tracked_comms):
    async def handshakes():
        for address in (servers.center.address, servers.worker.address):
            for _ in range(20):
                comm = await connect(address, role="client")
                comm.close()
                await comm.closed
    servers.call(handshakes())
    assert len(tracked_comms) == 80  # both ends of 40 connections
    assert_all_freed(tracked_comms, "closed connections freed without the cyclic collector")


def test_client_sessions_that_submit_and_gather_leave_no_connection_behind(servers,
                                                                           tracked_comms):
    # The worker's connection to the center was made before tracking began: everything
    # tracked belongs to the client sessions below.
    for i in range(5):
        with Executor(servers.center.address) as executor:
            assert executor.gather(executor.map(inc, range(i, i + 10))) == list(
                range(i + 1, i + 11))
            assert executor.scatter([i])[0].result() == i
        # the client's ends, and the center's and the worker's ends of its connections
        assert len(tracked_comms) >= 4 * (i + 1)
    # The servers' ends: what the client does with its own is the client's business.
    assert_all_freed(tracked_comms, "the center's and worker's ends of closed client sessions "
                                    "freed without the cyclic collector", accepted_only=True)
    assert servers.worker.registered.is_set()  # and the cluster is unharmed


def closed_connections_alive() -> int:
    """In a worker: the connections that are closed and still in memory (a ``Comm`` in a
    reference cycle stays until the cyclic collector runs)."""
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Comm) and obj.is_closed)


def test_a_real_worker_frees_closed_connections_without_the_collector(processes):
    """The same in a ``dworker`` process: with its collector off (as good as off with the
    servers' raised thresholds, on a quiet worker), closed connections must not pile up."""
    center = processes.start_center()
    worker = processes.start_worker(center.address)
    observer = processes.executor(center.address)
    on_worker = {"workers": [worker.address]}
    assert observer.run(gc.disable, **on_worker) == {worker.address: None}
    try:
        async def handshakes():
            for _ in range(40):
                comm = await connect(worker.address, role="client")
                comm.close()
                await comm.closed
        asyncio.run(handshakes())
        for i in range(3):
            with Executor(center.address) as session:
                assert session.gather(session.map(inc, range(i, i + 5))) == list(
                    range(i + 1, i + 6))
        wait_until(lambda: observer.run(closed_connections_alive, **on_worker)[worker.address]
                   == 0, timeout=15,
                   what="the worker's closed connections to be freed by reference counting")
    finally:
        observer.run(gc.enable, **on_worker)


def container_sizes(obj, path: str, sizes: dict[str, int], depth: int = 3,
                    seen: set[int] | None = None) -> dict[str, int]:
    """The length of every dict, set, list and unbounded deque reachable through the
    attributes of ``obj`` (and of the project's objects it holds, ``depth`` levels down)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return sizes
    seen.add(id(obj))
    attributes = dict(getattr(obj, "__dict__", {}))
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            attributes[slot] = getattr(obj, slot)
    for name, value in attributes.items():
        where = f"{path}.{name}"
        if isinstance(value, collections.deque) and value.maxlen is not None:
            continue  # a bounded history
        if isinstance(value, set) and all(isinstance(item, type) for item in value):
            continue  # kinds of message seen (checked once each): bounded by the catalogue
        if isinstance(value, (dict, set, list, collections.deque)):
            sizes[where] = len(value)
        elif depth and type(value).__module__.startswith("dist_"):
            container_sizes(value, where, sizes, depth - 1, seen)
    return sizes


async def short_session(address: str, number: int, submit: bool) -> None:
    """What an Executor says from opening to closing, at the protocol's level: the
    handshake, its session, the cluster's workers, maybe one task, close."""
    comm = await connect(address, role="client", name=f"short-{number}")
    comm.send(Session(id=1))
    assert isinstance(await comm.recv(), SessionReply)
    comm.send(ClusterInfo(id=2))
    assert isinstance(await comm.recv(), ClusterInfoReply)
    if submit:
        key = f"add-{number}"
        comm.send(Submit(tasks=[TaskSpec(key=key, function=dumps_function(operator.add),
                                         args=serialize(((number, 1), {})))],
                         small_values=True))
        while not (isinstance(msg := await comm.recv(), KeyInMemory) and msg.key == key):
            pass
        assert deserialize(msg.value) == number + 1
    comm.close()
    await comm.closed


def test_the_servers_keep_nothing_for_sessions_that_ended(servers):
    """A center up for days sees clients come and go: after the first sessions, more of them
    (together, a fifth submitting a task) leave every table of the center and the worker as
    it was -- no per-client record, connection, story or counter stays behind."""
    async def sessions(first: int, count: int) -> None:
        await asyncio.gather(*(short_session(servers.center.address, number, number % 5 == 0)
                               for number in range(first, first + count)))

    def sizes() -> dict[str, int]:
        found: dict[str, int] = {}
        container_sizes(servers.center, "center", found)
        container_sizes(servers.worker, "worker", found)
        return found

    def settled() -> bool:  # both servers have seen every close (and freed the keys)
        return (len(servers.center.comms) == 1 and not servers.center.state.clients
                and not servers.center.state.tasks and not servers.worker.state.tasks)

    async def census() -> dict[str, int]:  # on the servers' loop, as nothing changes them
        return sizes()

    servers.call(sessions(0, 40))
    wait_until(settled, timeout=30, what="the first sessions' ends")
    before = servers.call(census())
    servers.call(sessions(1000, 200))
    wait_until(settled, timeout=30, what="the later sessions' ends")
    after = servers.call(census())
    grown = {where: (before.get(where), size) for where, size in after.items()
             if size > before.get(where, 0)}
    assert grown == {}


def test_a_worker_keeps_nothing_for_peers_that_came_and_went(servers):
    """Every restarted worker is a peer at a new address: a worker up for days must not keep
    a record for each one it ever fetched from."""
    async def fetch_from_short_lived_peers(count: int) -> None:
        for _ in range(count):
            peer = Worker(servers.center.address, nthreads=1, port=0)
            await peer.start()
            await asyncio.wait_for(peer.registered.wait(), 30)
            reply = await servers.worker.request(peer.address, GetData(id=0, keys=["absent"]))
            assert reply.missing == ["absent"]
            await peer.close()

    def sizes() -> dict[str, int]:
        return container_sizes(servers.worker, "worker", {})

    async def census() -> dict[str, int]:
        return sizes()

    servers.call(fetch_from_short_lived_peers(2))
    wait_until(lambda: not servers.worker.state.tasks and len(servers.center.comms) == 1,
               timeout=30, what="the first peers to be gone")
    before = servers.call(census())
    servers.call(fetch_from_short_lived_peers(10))
    wait_until(lambda: len(servers.center.comms) == 1, timeout=30, what="the later peers gone")
    after = servers.call(census())
    # (A peer run in this process leaves the connections it accepted open when it closes, where
    # a peer process would end them: the connections themselves are not counted here.)
    grown = {where: (before.get(where), size) for where, size in after.items()
             if size > before.get(where, 0) and where != "worker.peers._pool._comms"}
    assert grown == {}
