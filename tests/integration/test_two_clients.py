"""Several clients on one cluster at once: each gets its own results, equal keys are shared and
computed once, and one client leaving or failing does not disturb the other."""
from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from dist_client import ClusterError

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


def stamp(x):
    """A different value every time it runs: equal values mean it ran once."""
    return f"{x}-{uuid.uuid4().hex}"


def slow_stamp(x, delay=0.3):
    time.sleep(delay)
    return stamp(x)


def fail(x):
    raise KeyError(f"no such record: {x}")


def test_two_clients_compute_at_the_same_time(cluster):
    clients = [cluster.executor(), cluster.executor()]
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(clients))

    def work(index, client):
        try:
            start.wait(RESULT_TIMEOUT)
            offset = 1000 * index
            squares = client.map(lambda x: x * x, range(offset, offset + 100))
            total = client.submit(sum, squares)
            results[index] = [total.result(timeout=RESULT_TIMEOUT),
                              *client.gather(squares[:3], timeout=RESULT_TIMEOUT)]
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RESULT_TIMEOUT * 2)
    assert not errors, errors
    for index in range(len(clients)):
        offset = 1000 * index
        assert results[index] == [sum(x * x for x in range(offset, offset + 100)),
                                  offset ** 2, (offset + 1) ** 2, (offset + 2) ** 2]


def test_equal_keys_are_shared_and_computed_once(cluster):
    first, second = cluster.executor(), cluster.executor()
    # Submitted while the other client's task is still running: joins it, does not rerun it.
    mine = first.submit(slow_stamp, "shared")
    theirs = second.submit(slow_stamp, "shared")
    assert mine.key == theirs.key
    assert mine.result(timeout=RESULT_TIMEOUT) == theirs.result(timeout=RESULT_TIMEOUT)
    # Submitted after it finished: the result held for the first client is reused.
    again = second.submit(slow_stamp, "shared")
    assert again.result(timeout=RESULT_TIMEOUT) == mine.result(timeout=RESULT_TIMEOUT)
    # A key one client made can be an input of the other's task, by submitting the same call.
    joined = second.submit(len, second.submit(slow_stamp, "shared"))
    assert joined.result(timeout=RESULT_TIMEOUT) == len(mine.result(timeout=RESULT_TIMEOUT))


def test_a_scattered_value_is_shared_by_key(cluster):
    first, second = cluster.executor(), cluster.executor()
    [mine] = first.scatter([{"answer": 42}])
    [theirs] = second.scatter([{"answer": 42}])
    assert mine.key == theirs.key
    assert second.submit(lambda d: d["answer"], theirs).result(timeout=RESULT_TIMEOUT) == 42


def test_each_client_sees_a_shared_failure(cluster):
    first, second = cluster.executor(), cluster.executor()
    mine, theirs = first.submit(fail, 3), second.submit(fail, 3)
    for future in (mine, theirs):
        with pytest.raises(KeyError, match="no such record: 3"):
            future.result(timeout=RESULT_TIMEOUT)


def test_one_client_leaving_does_not_disturb_the_other(cluster):
    staying, leaving = cluster.executor(), cluster.executor()
    running = staying.map(slow_stamp, range(6))
    abandoned = leaving.map(slow_stamp, range(6, 12))
    shared = leaving.submit(slow_stamp, 0)  # the same key as running[0]
    assert shared.key == running[0].key
    leaving.close()
    del abandoned, shared
    assert len(staying.gather(running, timeout=RESULT_TIMEOUT)) == 6
    assert staying.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2
    with pytest.raises(ClusterError, match="closed"):
        leaving.submit(inc, 1)


def open_files() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count open files")
def test_clients_that_come_and_go_leave_no_open_files_behind(cluster):
    """A long-lived process (a web service, a notebook) makes executors again and again."""
    with cluster.executor() as first:
        assert first.submit(inc, 0).result(timeout=RESULT_TIMEOUT) == 1
    before = open_files()
    for i in range(10):
        with cluster.executor() as e:
            assert e.submit(inc, i).result(timeout=RESULT_TIMEOUT) == i + 1
    assert open_files() == before
