"""Brief tasks with inputs (a kind that finished in a moment, as a shuffle's splits) take no
slot from the tasks without inputs a worker is sent: the next read goes with a read's splits,
not after the center has heard that they all finished."""
from dist_protocol.messages import ComputeTask, TaskFinished

READ_SECONDS = 0.1
SPLIT_SECONDS = 0.0001


def shuffle_reads(center, reads: int, splits: int) -> None:
    """``reads`` tasks without inputs (``read-<i>``), each read by ``splits`` tasks
    (``split-<i><j>``)."""
    tasks: list = []
    for i in range(reads):
        tasks.append(f"read-{i}")
        tasks += [center.spec(f"split-{i}{j}", f"read-{i}") for j in "abc"[:splits]]
    center.submit(*tasks)


def ran(center, key: str, seconds: float):
    address = center.processing_on(key)
    return center.worker_sent(address, TaskFinished(key=key, nbytes=8, type="int", start=1.0,
                                                    stop=1.0 + seconds))


def sent(out) -> list[str]:
    return [m.key for _, m in out if isinstance(m, ComputeTask)]


def test_the_next_read_goes_with_the_splits_of_a_read_once_splits_are_known_brief(center):
    center.join("w1")
    shuffle_reads(center, reads=4, splits=3)
    assert center.processing("w1") == ["read-0", "read-1"]  # two slots; the rest queued
    # The first splits are of a kind not yet seen: they count against the slots.
    assert sent(ran(center, "read-0", READ_SECONDS)) == ["split-0a", "split-0b", "split-0c"]
    assert center.state_of("read-2") == "queued"
    for j in "ab":
        assert sent(ran(center, f"split-0{j}", SPLIT_SECONDS)) == []
    assert sent(ran(center, "split-0c", SPLIT_SECONDS)) == ["read-2"]

    out = ran(center, "read-1", READ_SECONDS)

    # The splits are known brief now: read-3 takes the slot read-1 left, at once.
    assert sent(out) == ["split-1a", "split-1b", "split-1c", "read-3"]
    assert center.state.workers["w1"].brief == {"split-1a", "split-1b", "split-1c"}


def test_a_brief_task_still_counts_as_unstarted_work_for_stealing(center):
    center.join("w1")
    shuffle_reads(center, reads=2, splits=3)
    ran(center, "read-0", READ_SECONDS)
    for j in "abc":
        ran(center, f"split-0{j}", SPLIT_SECONDS)
    ran(center, "read-1", READ_SECONDS)
    worker = center.state.workers["w1"]
    assert worker.brief and worker.assigned == 0 and worker.unstarted_above_threads


def test_a_brief_task_taken_back_or_left_behind_is_no_longer_counted(center):
    center.join("w1")
    shuffle_reads(center, reads=2, splits=3)
    ran(center, "read-0", READ_SECONDS)
    for j in "abc":
        ran(center, f"split-0{j}", SPLIT_SECONDS)
    ran(center, "read-1", READ_SECONDS)
    center.release("split-1a")  # (the harness's validate() checks brief <= processing)
    assert center.state.workers["w1"].brief == {"split-1b", "split-1c"}

    center.leave("w1")

    assert center.state.workers.get("w1") is None or not center.state.workers["w1"].brief
