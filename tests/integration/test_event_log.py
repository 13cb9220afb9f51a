"""dask's event log between real processes: clients and tasks log events to topics the center
keeps, read them back, and subscribers get them as they come."""
from __future__ import annotations

import queue
import socket
import time

import pytest
from dist_client import AsyncExecutor, Pub, Sub, get_worker

pytestmark = pytest.mark.timeout(120)


class Unpackable:
    pass


def log_from_task(x):
    get_worker().log_event("tasks", {"x": x, "worker": get_worker().address})
    return x


def test_events_logged_by_clients_and_tasks_are_read_back_in_order(cluster):
    e = cluster.executor()
    before = time.time()
    e.log_event("mine", {"step": 1})
    e.log_event(["mine", "other"], "two")
    assert e.gather(e.map(log_from_task, range(4))) == [0, 1, 2, 3]

    mine = e.get_events("mine")
    assert [msg for _, msg in mine] == [{"step": 1}, "two"]
    assert all(before <= stamp <= time.time() for stamp, _ in mine)
    assert isinstance(mine, tuple) and isinstance(mine[0], tuple)
    from_tasks = e.get_events("tasks")
    assert sorted(msg["x"] for _, msg in from_tasks) == [0, 1, 2, 3]
    assert {msg["worker"] for _, msg in from_tasks} <= {w.address for w in cluster.workers}
    everything = e.get_events()
    assert set(everything) == {"mine", "other", "tasks"} and everything["other"][0][1] == "two"
    assert e.get_events("never") == ()


def test_a_subscriber_gets_each_event_of_its_topic_until_it_unsubscribes(cluster):
    e = cluster.executor()
    listener = cluster.executor()
    heard: queue.SimpleQueue = queue.SimpleQueue()
    listener.subscribe_topic("news", heard.put)
    e.log_event("news", 1)
    e.submit(lambda: get_worker().log_event("news", 2), pure=False).result(30)
    e.log_event("elsewhere", 3)
    assert [heard.get(timeout=30)[1] for _ in range(2)] == [1, 2]
    listener.unsubscribe_topic("news")
    e.log_event("news", 4)
    assert [msg for _, msg in e.get_events("news")] == [1, 2, 4]
    listener.log_event("news", 5)  # a round trip on the listener's connection after the 4
    assert [msg for _, msg in listener.get_events("news")][-1] == 5
    assert heard.empty()


def test_an_asynchronous_executor_logs_and_reads_events(cluster):
    import asyncio

    async def main():
        async with AsyncExecutor(cluster.address) as e:
            await e.log_event("async", [1, 2])
            return await e.get_events("async")

    [(stamp, msg)] = asyncio.run(main())
    assert msg == [1, 2]


def test_a_topic_is_a_non_empty_string_and_a_handler_a_callable(cluster):
    e = cluster.executor()
    with pytest.raises(TypeError, match="topic"):
        e.log_event("", 1)
    with pytest.raises(TypeError, match="callable"):
        e.subscribe_topic("t", None)
    with pytest.raises(TypeError, match="msgpack"):
        e.log_event("t", Unpackable())  # as dask's: any client reads a log
    assert e.get_events("t") == ()


@pytest.mark.parametrize("durable", [True, False], ids=["durable-center", "center-starting-empty"])
def test_subscriptions_are_renewed_when_the_center_comes_back(processes, tmp_path, durable,
                                                             wait_until):
    with socket.socket() as probe:  # a port to start the center on again
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    state = ("--state-dir", str(tmp_path / "state")) if durable else ()
    center = processes.start_center("--port", port, *state)
    listener = processes.executor(center.address)
    heard: queue.SimpleQueue = queue.SimpleQueue()
    listener.subscribe_topic("news", heard.put)
    sub = Sub("pubsub-news", executor=listener)
    listener.log_event("news", "before")
    assert heard.get(timeout=30)[1] == "before"

    center.kill()
    center.wait(30)
    wait_until(lambda: listener.status == "reconnecting", 30, "the listener to notice")
    center = processes.start_center("--port", port, *state)
    wait_until(lambda: listener.status == "running", 60, "the listener to reconnect")

    processes.executor(center.address).log_event("news", "after")  # another client's
    assert heard.get(timeout=30)[1] == "after"
    Pub("pubsub-news", executor=listener).put("published after")
    assert sub.get(timeout=30) == "published after"
