"""``resources=``: a task runs only on a worker that has them free, and waits while none does."""
from dist_protocol.messages import ComputeTask, TaskErred


def test_a_task_runs_only_where_its_resources_are(center):
    center.join("cpu", nthreads=4)
    center.join("gpu", nthreads=4, resources={"GPU": 1})

    out = center.submit(center.spec("train", resources={"GPU": 1}))

    assert out == [("gpu", center.compute("train"))]


def test_without_a_worker_that_has_them_it_waits_for_one(center):
    center.join("cpu", nthreads=4)
    assert center.submit(center.spec("train", resources={"GPU": 1})) == []
    assert center.state_of("train") == "no-worker"

    assert center.join("gpu", resources={"GPU": 2})[-1] == ("gpu", center.compute("train"))


def test_tasks_share_a_worker_s_resources_and_wait_for_them_to_be_freed(center):
    center.join("gpu", nthreads=8, resources={"GPU": 2})
    out = center.submit(*(center.spec(f"t{i}", resources={"GPU": 1}) for i in range(4)))

    assert out == [("gpu", center.compute("t0")), ("gpu", center.compute("t1"))]
    assert center.state_of("t2") == center.state_of("t3") == "queued"
    out = center.finished("gpu", "t0")
    assert ("gpu", center.compute("t2")) in out
    assert center.state_of("t3") == "queued"
    out = center.erred("gpu", "t1")
    assert ("gpu", center.compute("t3")) in out
    assert any(isinstance(m, TaskErred) and m.key == "t1" for _, m in out)


def test_tasks_asking_for_more_than_is_free_do_not_hold_up_smaller_ones(center):
    center.join("w", nthreads=8, resources={"GPU": 2, "MEM": 10})
    center.submit(center.spec("big", resources={"GPU": 2}))
    out = center.submit(center.spec("also-big", resources={"GPU": 2}),
                        center.spec("memory-only", resources={"MEM": 4}))

    assert out == [("w", center.compute("memory-only"))]
    assert center.finished("w", "big")[-1] == ("w", center.compute("also-big"))


def test_tasks_of_a_worker_that_left_wait_for_another_with_the_resources(center):
    center.join("gpu-a", resources={"GPU": 1})
    center.join("gpu-b", resources={"GPU": 1})
    center.submit(*(center.spec(f"t{i}", resources={"GPU": 1}) for i in range(3)))
    assert center.state_of("t2") == "queued"
    running_on_a = [k for k in ("t0", "t1") if center.processing_on(k) == "gpu-a"]

    center.leave("gpu-a")

    # Its task waits for gpu-b, which is busy: one GPU task at a time there.
    assert [center.state_of(k) for k in running_on_a] == ["queued"]
    other = ({"t0", "t1"} - set(running_on_a)).pop()
    out = center.finished("gpu-b", other)
    assert ("gpu-b", center.compute(running_on_a[0])) in out or \
        ("gpu-b", center.compute("t2")) in out


def test_resource_tasks_are_not_stolen(center):
    center.join("gpu", resources={"GPU": 8}, nthreads=1)
    center.join("idle", nthreads=4)
    out = center.submit(*(center.spec(f"t{i}", resources={"GPU": 1}) for i in range(6)))
    assert {to for to, _ in out} == {"gpu"}


def test_tasks_waiting_for_resources_start_highest_priority_first(center):
    """As the queue of tasks without resources: priority, then arrival, whatever the order
    they came in."""
    center.join("gpu", nthreads=8, resources={"GPU": 1})
    center.submit(center.spec("first", resources={"GPU": 1}))
    center.submit(*(center.spec(key, resources={"GPU": 1}, priority=priority)
                    for key, priority in (("a", 0), ("b", 10), ("c", -5), ("d", 5), ("e", 0))))
    started = []
    running = "first"
    for _ in range(5):
        out = center.finished("gpu", running)
        [running] = [m.key for _, m in out if isinstance(m, ComputeTask)]
        started.append(running)

    assert started == ["b", "d", "a", "e", "c"]
