"""Partners: tasks without inputs that one dependent combines (``x + x.T`` adds blocks (i, j)
and (j, i)) run on one worker, so that neither result has to move to the other's worker."""
from dist_protocol.messages import StealRequest

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
