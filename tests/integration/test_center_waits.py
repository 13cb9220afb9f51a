"""Waits the center answers (protocol feature ``waits``): ``wait_for_workers``, ``scatter``
with no worker yet and ``replicate`` end on the event that makes them true -- a worker
registering, a copy landing -- after one request each, never asked again; a client leaving
while it waits leaves nothing at the center, and a malformed wait costs its connection only.
Against a center without the feature the client asks again, as it did before it."""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
import socket
import threading

import msgpack
import pytest
from dist_center.events import ClientSent
from dist_center.server import Center
from dist_center.state import CenterState
from dist_client import Executor
from dist_client.errors import LostDataError
from dist_protocol.comm import connect
from dist_protocol.features import FEATURES
from dist_protocol.framing import DEFAULT_LIMITS, FrameDecoder, frames_to_bytes
from dist_protocol.messages import ClusterInfo, Hello, encode_batch
from dist_protocol.timeouts import TimeoutError

from .conftest import wait_until

pytestmark = pytest.mark.timeout(120)


class CountingState(CenterState):
    """The center's state, counting the requests each client sends it, by op."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        super().__init__()
        self.sent: collections.Counter[str] = collections.Counter()

    def handle(self, *events):
        for event in events:
            if isinstance(event, ClientSent):
                self.sent[event.message.op] += 1
        return super().handle(*events)


class CountingCenter:
    """A center on its own event loop in this process, as ``dcenter`` runs it, that counts
    the requests each client sends it, by op."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.center = Center("127.0.0.1:0", heartbeat_timeout=30)
        self.center.state = self.state = CountingState()
        self.sent = self.state.sent
        self.call(self.center.start())
        self.address = self.center.address

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def waiting(self, op: str) -> int:
        return self.state.waits.describe()[op]

    def close(self) -> None:
        self.call(self.center.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def center():
    server = CountingCenter()
    yield server
    server.close()


@pytest.fixture
def in_background():
    """Runs a blocking call in a thread: ``in_background(f, *args)`` -> a concurrent future."""
    pool = concurrent.futures.ThreadPoolExecutor(2)
    yield pool.submit
    pool.shutdown(wait=True, cancel_futures=True)


def nothing_waits(center: CountingCenter) -> bool:
    return not center.state.waits and not center.state.waits.watched


def test_wait_for_workers_ends_when_the_worker_registers(center, start_worker, in_background):
    with Executor(center.address) as e:
        before = center.sent["cluster-info"]
        waiting = in_background(e.wait_for_workers, 1, 60)
        wait_until(lambda: center.waiting("cluster-info") == 1, what="the wait at the center")

        start_worker(center.address)

        waiting.result(30)
        assert center.sent["cluster-info"] - before == 1  # asked once, answered on the event
        assert len(e.nthreads()) == 1
        assert nothing_waits(center)


def test_wait_for_workers_raises_timeout_error_and_leaves_nothing(center):
    with Executor(center.address) as e:
        before = center.sent["cluster-info"]
        with pytest.raises(TimeoutError, match="fewer than 2 workers"):
            e.wait_for_workers(2, timeout=0.2)
        assert center.sent["cluster-info"] - before == 1
        assert nothing_waits(center)


def test_scatter_without_workers_waits_for_the_first(center, start_worker, in_background):
    with Executor(center.address) as e:
        scattering = in_background(e.scatter, [1, 2, 3], timeout=60)
        wait_until(lambda: center.waiting("scatter-plan") == 1, what="the plan to wait")

        worker = start_worker(center.address)

        futures = scattering.result(30)
        assert e.gather(futures) == [1, 2, 3]
        assert center.sent["scatter-plan"] == 1
        assert all(holders == [worker.address] for holders in e.who_has(futures).values())
        assert nothing_waits(center)


def test_scatter_without_workers_times_out(center):
    with Executor(center.address) as e:
        with pytest.raises(TimeoutError, match="no workers to scatter to"):
            e.scatter([1], timeout=0.2)
        assert center.sent["scatter-plan"] == 1
        assert nothing_waits(center) and not center.state.tasks


def test_replicate_ends_when_the_copies_exist_without_asking_who_has(center, start_worker):
    first = start_worker(center.address)
    start_worker(center.address)
    start_worker(center.address)
    with Executor(center.address) as e:
        e.wait_for_workers(3, timeout=30)
        [x, y] = e.scatter([10, 20], workers=[first.address])
        asked = center.sent["who-has"]

        e.replicate([x, y], n=3, timeout=60)

        assert center.sent["replicate"] == 1 and center.sent["who-has"] == asked
        assert all(len(holders) == 3 for holders in e.who_has([x, y]).values())
        assert nothing_waits(center)
        e.replicate(x, n=10, timeout=60)  # as many copies as there are workers
        assert center.sent["replicate"] == 2


def test_replicate_of_data_lost_while_waiting_raises_at_once(center, start_worker,
                                                           in_background):
    holder = start_worker(center.address)
    stuck = start_worker(center.address)
    with Executor(center.address) as e:
        e.wait_for_workers(2, timeout=30)
        x = e.scatter(1, workers=[holder.address])
        stuck.suspend()  # it cannot fetch the copy: the replicate waits
        try:
            replicating = in_background(e.replicate, x, n=2, timeout=60)
            wait_until(lambda: center.waiting("replicate") == 1, what="the replicate to wait")

            holder.kill()  # the only copy goes with it

            with pytest.raises(LostDataError):
                replicating.result(30)
            assert nothing_waits(center)
        finally:
            stuck.resume()


def test_a_client_that_leaves_while_waiting_leaves_nothing_at_the_center(center):
    async def wait_and_leave():
        comm = await connect(center.address, role="client", name="leaver")
        assert "waits" in comm.features
        comm.send(ClusterInfo(id=1, min_workers=5))  # no timeout: waits as long as it is open
        comm.flush()
        while center.waiting("cluster-info") != 1:
            await asyncio.sleep(0.01)
        comm.close()
        await comm.closed

    center.call(wait_and_leave())
    wait_until(lambda: nothing_waits(center) and not center.state.clients,
               what="the wait to go with its client")


def test_a_malformed_wait_closes_its_connection_only(center, start_worker, in_background):
    with Executor(center.address) as e:
        waiting = in_background(e.wait_for_workers, 1, 60)
        wait_until(lambda: center.waiting("cluster-info") == 1, what="the wait at the center")
        hello = Hello(min_version=1, max_version=1, role="client", name="malformed",
                      nonce=os.urandom(32), features=sorted(FEATURES))
        bad = {"op": "cluster-info", "id": 1, "min_workers": 1, "timeout": -1.0}
        host, port = center.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=15) as sock:
            sock.sendall(frames_to_bytes(encode_batch([hello])))
            sock.sendall(frames_to_bytes([msgpack.packb([bad], use_bin_type=True)]))
            answers = _read_until_closed(sock)
        assert answers[0]["op"] == "welcome"
        assert answers[-1]["op"] == "error" and answers[-1]["code"] == "invalid-message"
        assert "timeout" in answers[-1]["message"]

        start_worker(center.address)  # the other client's wait goes on, and ends

        waiting.result(30)
        assert nothing_waits(center)


def _read_until_closed(sock: socket.socket) -> list[dict]:
    decoder = FrameDecoder(DEFAULT_LIMITS)
    messages: list[dict] = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return messages
        if not data:
            return messages
        for frames in decoder.feed(data):
            messages.extend(msgpack.unpackb(frames[0], raw=False))


def test_a_center_without_the_feature_is_asked_again(make_cluster, start_worker,
                                                     in_background):
    older = {"DIST_PROTOCOL_FEATURES": ",".join(f for f in FEATURES if f != "waits")}
    cluster = make_cluster(n_workers=0, env=older)
    with cluster.executor() as e:
        assert not e.core.center_has("waits")
        waiting = in_background(e.wait_for_workers, 2, 60)
        scattering = in_background(e.scatter, [1, 2], timeout=60)
        start_worker(cluster.address)
        start_worker(cluster.address)
        waiting.result(30)
        futures = scattering.result(30)
        e.replicate(futures, n=2, timeout=60)
        assert all(len(holders) == 2 for holders in e.who_has(futures).values())
        with pytest.raises(TimeoutError):
            e.wait_for_workers(3, timeout=0.2)
