"""A center that runs for weeks: what a client's requests set up goes once they are answered
or the client is gone, however long the timeouts they asked for."""
from __future__ import annotations

import asyncio

import pytest
from dist_center.server import Center
from dist_protocol.comm import connect
from dist_protocol.messages import (ClusterInfo, ClusterInfoReply, Coordinate, CoordinateReply,
                                    Session, SessionReply)
from dist_protocol.serialize import serialize

pytestmark = pytest.mark.timeout(60)

AN_HOUR = 3600.0


async def replies(comm, n: int) -> dict[int, CoordinateReply]:
    got: dict[int, CoordinateReply] = {}
    while len(got) < n:
        msg = await comm.recv()
        if isinstance(msg, CoordinateReply):
            got[msg.id] = msg
    return got


async def a_center() -> Center:
    center = Center("127.0.0.1:0", heartbeat_timeout=30)
    await center.start()
    return center


async def a_client(center: Center):
    comm = await connect(center.address, role="client", name="consumer")
    comm.send(Session(id=0))
    assert isinstance(await comm.recv(), SessionReply)
    return comm


def get(request: int, timeout: float | None = AN_HOUR) -> Coordinate:
    return Coordinate(id=request, kind="queue", name="jobs", action="get", timeout=timeout)


def put(request: int, value: int) -> Coordinate:
    return Coordinate(id=request, kind="queue", name="jobs", action="put",
                      value=serialize(value))


def size(request: int) -> Coordinate:
    return Coordinate(id=request, kind="queue", name="jobs", action="size")


def test_a_consumer_waiting_with_a_long_timeout_leaves_no_timer_per_item():
    async def main() -> None:
        center = await a_center()
        try:
            idle = center.pending_timers()
            consumer = await a_client(center)
            for i in range(1, 301, 3):
                # The queue is empty: the get waits, with its timer (the size's answer says
                # the center has taken it in); then an item comes.
                consumer.send(get(i), size(i + 1))
                await replies(consumer, 1)
                consumer.send(put(i + 2, i))
                answered = await replies(consumer, 2)
                assert answered[i].status == "ok" and answered[i + 2].status == "ok"
            # Answered at once, a wait leaves nothing either; one waiting has its timer.
            consumer.send(put(200, 0), get(201))
            await replies(consumer, 2)
            assert center.pending_timers() == idle
            consumer.send(get(202), size(203))
            await replies(consumer, 1)
            assert center.pending_timers() == idle + 1
            consumer.close()
            await consumer.closed
        finally:
            await center.close()

    asyncio.run(main())


def test_a_client_gone_leaves_no_timer_for_its_waits():
    async def main() -> None:
        center = await a_center()
        try:
            idle = center.pending_timers()
            for n in range(20):
                client = await a_client(center)
                (served,) = [comm for name, comm in center.comms.items()
                             if name.startswith("client-")]
                client.send(get(1), Coordinate(id=2, kind="event", name=f"never-{n % 3}",
                                               action="wait", timeout=AN_HOUR),
                            Coordinate(id=3, kind="lock", name="held", action="acquire",
                                       lease=f"lease-{n}", timeout=AN_HOUR),
                            size(4))
                await replies(client, 2 if n == 0 else 1)  # the first takes the lock
                client.close()
                await served.closed  # (the center's own close callbacks have run by then)
            assert center.pending_timers() == idle
            assert not center.state.coordination.waiting
        finally:
            await center.close()

    asyncio.run(main())


def test_an_answer_to_one_kind_of_request_leaves_the_timer_of_another_with_its_id():
    async def main() -> None:
        center = await a_center()
        try:
            client = await a_client(center)
            # No worker comes: the wait ends at its timeout. The queue's answer, with the same
            # id (a peer may number each kind of request apart), is not the wait's.
            client.send(ClusterInfo(id=7, min_workers=1, timeout=0.5), size(8))
            await replies(client, 1)  # the wait is in, with its timer
            client.send(size(7))
            assert (await replies(client, 1))[7].status == "ok"
            while not isinstance(msg := await client.recv(), ClusterInfoReply):
                pass
            assert msg.id == 7 and msg.workers == []
            assert center.pending_timers() == 0
            client.close()
            await client.closed
        finally:
            await center.close()

    asyncio.run(main())
