"""A process-based local cluster scaled by hand and adaptively: 0 -> N -> 0 with the center
deciding, graceful retirement keeping every result (no recomputation)."""

import pytest
from dist_client import Executor
from dist_deploy import LocalCluster

pytestmark = pytest.mark.timeout(240)


def slow_square(x):
    import time
    time.sleep(0.5)
    return x * x


def registered(cluster):
    return sorted(w["name"] for w in cluster.link.workers())


def test_scale_up_and_down_keeps_the_data_of_retired_workers(wait_until):
    with LocalCluster(n_workers=1, threads_per_worker=1) as cluster:
        with Executor(cluster) as e:
            futures = e.map(lambda x: x + 1, range(20))
            assert e.gather(futures) == list(range(1, 21))
            cluster.scale(3)
            wait_until(lambda: len(registered(cluster)) == 3, what="3 workers")
            more = e.map(lambda x: x * 10, range(30))
            assert e.gather(more) == [x * 10 for x in range(30)]
            processes = [handle.process for handle in cluster.workers.values()]
            cluster.scale(1)
            assert len(cluster.workers) == 1
            assert registered(cluster) == cluster.worker_names
            assert all(p.poll() is not None for p in processes if
                       p not in [h.process for h in cluster.workers.values()])
            # Everything is still there, on the one worker left, without being recomputed.
            assert e.gather(futures) == list(range(1, 21))
            assert e.gather(more) == [x * 10 for x in range(30)]
            story = e.story(futures[0].key)
            assert sum(1 for entry in story if entry["finish"] == "processing"
                       and entry["worker"] == "") == 1
    assert all(p.poll() is not None for p in cluster.processes) and cluster.status == "closed"


def test_adaptive_scales_from_zero_to_several_and_back_to_zero(wait_until):
    with LocalCluster(n_workers=0, threads_per_worker=1) as cluster:
        adaptive = cluster.adapt(minimum=0, maximum=3, target_duration=1.0, interval=0.2,
                                 wait_count=3)
        with Executor(cluster) as e:
            futures = e.map(slow_square, range(24))
            assert e.gather(futures) == [x * x for x in range(24)]
            peak = max((d.n for d in adaptive.history if d.action == "up"), default=0)
            assert peak == 3
            result = e.submit(sum, futures)
            assert result.result() == sum(x * x for x in range(24))
            # Idle: down to the one worker that holds the data still wanted...
            wait_until(lambda: len(cluster.workers) == 1, what="one worker left")
            assert result.result() == sum(x * x for x in range(24))
            del futures, result
        # ...and to none once nothing is held.
        wait_until(lambda: not cluster.workers, what="no workers")
        wait_until(lambda: registered(cluster) == [], what="the center to know none")
        adaptive.stop()
