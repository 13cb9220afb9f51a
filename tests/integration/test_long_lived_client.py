"""An executor kept open for weeks: what it keeps for workers that came and went, and for
subscriptions dropped without closing, goes with them."""
from __future__ import annotations

import asyncio
import gc

import pytest
from dist_client import Pub, Sub
from dist_client.transfer import WorkerConnections
from dist_protocol.comm import listen

from .conftest import wait_until

pytestmark = pytest.mark.timeout(120)


def test_connections_keep_nothing_of_workers_gone():
    async def main() -> None:
        workers = WorkerConnections(None, None, "long-lived")
        for _ in range(10):
            served: asyncio.Future = asyncio.get_running_loop().create_future()
            listener = await listen("127.0.0.1:0", served.set_result, who="worker")
            address = listener.address
            comm = await workers.comm(address)
            assert await workers.comm(address) is comm  # one connection per worker
            listener.close()
            (await served).close("the worker leaves")
            await comm.closed
            try:
                await workers.comm(address)
            except OSError:
                pass  # gone: nothing listens there now
            else:
                raise AssertionError(f"a connection to {address}, where nothing listens")
        assert workers.addresses() == set()

    asyncio.run(main())


@pytest.mark.cluster(n_workers=1, nthreads=1)
def test_a_sub_dropped_unclosed_stops_receiving_and_the_center_stops_sending(cluster):
    executor = cluster.executor()
    pub = Pub("news", executor)
    kept = Sub("news", executor)
    dropped = Sub("updates", executor)
    assert Pub("updates", executor).put("first") == 1
    assert dropped.get(timeout=30) == "first"
    del dropped
    gc.collect()
    # The first message past the drop tells the client; from then on nobody listens.
    wait_until(lambda: Pub("updates", executor).put("more") == 0, timeout=30,
               what="the center to stop sending a topic whose only Sub was dropped")
    assert pub.put("still") == 1 and kept.get(timeout=30) == "still"
    kept.close()

