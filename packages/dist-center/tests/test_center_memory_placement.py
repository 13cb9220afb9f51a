"""Placement and memory: tasks without inputs are held back at the center (worker saturation),
and workers whose results outgrow their memory target are chosen last."""
import math

from dist_protocol.messages import TaskFinished

MB = 1_000_000


def spilling(center, address):
    """A heartbeat saying ``address`` holds more results than its target (it spills)."""
    return center.heartbeat(address, memory=300 * MB, managed=250 * MB, memory_limit=400 * MB,
                            memory_target=240 * MB)


def test_tasks_without_inputs_go_first_to_a_worker_below_its_memory_target(center):
    center.join("w1")
    center.join("w2")
    spilling(center, "w1")

    center.submit("a", "b")

    # Both would fit on either (two slots each): the one with room in memory takes both.
    assert center.processing("w2") == ["a", "b"]
    assert center.processing("w1") == []


def test_a_task_with_inputs_goes_to_the_worker_holding_them_even_above_target(center):
    center.join("w1")
    center.join("w2")
    center.submit("x")
    center.finish("x")
    spilling(center, center.who_has("x").pop())
    holder = center.who_has("x").pop()

    center.submit(center.spec("y", "x"))

    assert center.processing_on("y") == holder  # data locality comes first


def test_between_equally_busy_workers_the_one_using_less_memory_gets_the_task(center):
    center.join("w1")
    center.join("w2")
    center.heartbeat("w1", memory=200 * MB, managed=10 * MB, memory_limit=400 * MB)
    center.heartbeat("w2", memory=100 * MB, managed=10 * MB, memory_limit=400 * MB)

    center.submit("a")

    assert center.processing_on("a") == "w2"


def test_a_worker_above_its_memory_target_gets_no_buffer_of_short_tasks(center):
    center.join("w1")
    center.submit(*(f"t{i}" for i in range(10)))
    spilling(center, "w1")

    # 1 ms per task would buffer five more per thread; spilling, it gets only its two slots.
    center.worker_sent("w1", TaskFinished(key="t0", nbytes=8, type="int",
                                          start=100.0, stop=100.001))

    assert center.processing("w1") == ["t1", "t2"]


def test_saturation_counts_tasks_per_thread(center):
    center.join("w1", nthreads=4)

    center.submit(*(f"t{i}" for i in range(10)))

    assert len(center.processing("w1")) == 5  # ceil(4 x 1.1)


def test_infinite_saturation_sends_every_task_at_once(center):
    center.state.worker_saturation = math.inf
    center.join("w1")

    center.submit(*(f"t{i}" for i in range(10)))

    assert len(center.processing("w1")) == 10
    assert not center.state.queue
