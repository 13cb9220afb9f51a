"""Partners: tasks without inputs that one dependent combines (``x + x.T`` adds blocks (i, j)
and (j, i)) run on one worker, so that neither result has to move to the other's worker."""
from dist_protocol.messages import ComputeTask, StealRequest

MB = 1_000_000


def busy(center, *addresses):
    """Give each worker a task that holds its one thread."""
    for address in addresses:
        center.submit(f"busy-{address}")
        assert center.processing_on(f"busy-{address}") == address


def test_a_partner_goes_to_the_worker_running_the_other_while_no_thread_is_idle(center):
    center.join("w1")
    center.join("w2")
    busy(center, "w1", "w2")

    center.submit("a", "b", center.spec("c", "a", "b"))

    # Without partners, b would go to w2 (less busy once a is on w1).
    assert center.processing("w1") == ["busy-w1", "a", "b"]
    assert center.processing("w2") == ["busy-w2"]
    center.finish("a")
    center.finish("b")
    assert center.processing_on("c") == "w1"  # nothing to move


def test_a_worker_with_an_idle_thread_takes_a_partner_rather_than_wait(center):
    center.join("w1")
    center.join("w2")

    center.submit("a", "b", center.spec("c", "a", "b"))

    assert center.processing_on("a") == "w1"
    assert center.processing_on("b") == "w2"


def test_a_queued_partner_is_sent_with_the_task_a_worker_takes_from_the_queue(center):
    center.join("w1")
    center.join("w2")
    center.submit("x1", "x2", "x3", "x4")  # two slots each: both full
    pairs = []
    for i in range(3):
        pairs += [f"a{i}", f"b{i}", center.spec(f"c{i}", f"a{i}", f"b{i}")]
    center.submit(*pairs)
    assert [center.state_of(f"{p}{i}") for i in range(3) for p in "ab"] == ["queued"] * 6

    center.finish("x1")
    center.finish("x2")

    # Each worker that frees a slot takes a pair, one beyond its two slots.
    for i in range(2):
        assert center.processing_on(f"a{i}") == center.processing_on(f"b{i}")
    assert center.processing_on("a0") != center.processing_on("a1")
    assert center.state_of("a2") == center.state_of("b2") == "queued"


def test_a_join_of_many_inputs_has_no_partners(center):
    center.join("w1")
    center.join("w2")
    busy(center, "w1", "w2")
    parts = [f"p{i}" for i in range(9)]

    center.submit(*parts, center.spec("whole", *parts))

    # Spread as any tasks without inputs (two slots each; the rest queued), not drawn together.
    assert len(center.processing("w1")) == len(center.processing("w2")) == 2


def test_a_partner_goes_no_further_than_one_task_per_thread_beyond_capacity(center):
    center.join("w1")
    busy(center, "w1")

    center.submit("a", "b", "c", center.spec("d", "a", "b", "c"))

    # Two slots, and one more for a partner: c waits in the queue.
    assert center.processing("w1") == ["busy-w1", "a", "b"]
    assert center.state_of("c") == "queued"


def test_no_partner_beyond_capacity_for_a_worker_above_its_memory_target(center):
    center.join("w1")
    center.join("w2")
    busy(center, "w1", "w2")
    center.submit("a")
    holder = center.processing_on("a")
    center.heartbeat(holder, memory=300 * MB, managed=250 * MB, memory_limit=400 * MB,
                     memory_target=240 * MB)

    center.submit("b", center.spec("c", "a", "b"))

    assert center.processing_on("b") != holder


def test_an_idle_worker_still_steals_a_partner_that_has_not_started(center):
    center.join("w1")
    center.join("w2")
    busy(center, "w1", "w2")
    center.submit("a", "b", center.spec("c", "a", "b"))
    assert center.processing("w1") == ["busy-w1", "a", "b"]

    out = center.finish("busy-w2")

    assert ("w1", StealRequest(keys=["b"])) in out


# -- the tasks joining partners wait ahead of them where they run (workers announcing the
# feature ``dispatch-ahead``): they start the moment the partners finish, without waiting for
# the center to hear of it, as a chain's next link does.

AHEAD = frozenset({"dispatch-ahead"})


def computes(out) -> list[tuple[str, str, list[str] | None]]:
    return [(who, m.key, m.ahead) for who, m in out if isinstance(m, ComputeTask)]


def test_the_two_sums_of_a_pair_wait_ahead_on_the_worker_running_the_pair(center):
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    busy(center, "w1", "w2")

    # x + x.T: blocks (0, 1) and (1, 0) are each read by both sums of the pair.
    out = center.submit("x01", "x10", center.spec("s01", "x01", "x10"),
                        center.spec("s10", "x10", "x01"), wanted=["s01", "s10"])

    assert computes(out) == [("w1", "x01", None), ("w1", "x10", None),
                             ("w1", "s01", ["x01", "x10"]), ("w1", "s10", ["x10", "x01"])]
    assert center.state.workers["w1"].ahead == {"s01", "s10"}
    # Both start on w1 as the pair finishes: the center sends nothing more.
    assert computes(center.finished("w1", "x01")) == []
    assert computes(center.finished("w1", "x10")) == []
    assert center.state.workers["w1"].ahead == set()
    assert center.processing("w1") == ["busy-w1", "s01", "s10"]


def test_a_pair_on_two_workers_keeps_its_sums_waiting_at_the_center(center):
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)

    # Idle threads take a partner each rather than wait (see above): the pair is split.
    out = center.submit("x01", "x10", center.spec("s01", "x01", "x10"),
                        center.spec("s10", "x10", "x01"), wanted=["s01", "s10"])

    assert [ahead for _, _, ahead in computes(out)] == [None, None]
    assert center.state_of("s01") == center.state_of("s10") == "waiting"


def test_a_join_of_a_partner_and_a_task_with_inputs_waits_at_the_center_behind_a_backlog(
        center):
    # Only partners were brought together by placement; behind a backlog, another worker
    # may start the join first, so placement decides once its inputs are done.
    center.join("w1", features=AHEAD)
    busy(center, "w1")
    center.submit("x", "y", center.spec("z", "y"))

    out = center.submit(center.spec("j", "x", "z"), center.spec("k", "x"), wanted=["j", "k"])

    assert computes(out) == []
    assert center.state_of("j") == "waiting"


def test_a_partner_read_by_more_tasks_than_a_small_join_sends_none_ahead(center):
    center.join("w1", features=AHEAD)
    busy(center, "w1")
    readers = [center.spec(f"r{i}", "a", "b") for i in range(9)]

    out = center.submit("a", "b", *readers, wanted=[f"r{i}" for i in range(9)])

    assert [key for _, key, ahead in computes(out) if ahead] == []
