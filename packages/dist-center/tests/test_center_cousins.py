"""Cousins: tasks without inputs whose results meet one join further on (the blocks of
``(x + x.T).sum(axis=0)`` whose sums one partial sum adds). A worker taking queued tasks
passes over one whose cousins are on another worker for one a few places behind it whose
cousins are not, so that fewer results cross between the workers."""


def reduction(center, *groups: str):
    """Per group ``g``: roots ``g1``, ``g2`` (partners) and ``g-pair`` adding them; then one
    ``join`` adding two groups' pairs: ``a`` with ``b``, ``c`` with ``d``, ..."""
    tasks: list = []
    for group in groups:
        tasks += [f"{group}1", f"{group}2", center.spec(f"{group}-pair", f"{group}1", f"{group}2")]
    for first, second in zip(groups[::2], groups[1::2]):
        tasks.append(center.spec(f"{first}{second}-join", f"{first}-pair", f"{second}-pair"))
    center.submit(*tasks)


def two_full_workers(center):
    center.join("w1")
    center.join("w2")
    center.submit("x1", "x2", "x3", "x4")  # two slots each: both full
    return {center.processing_on(x): x for x in ("x1", "x2", "x3", "x4")}


def test_a_worker_passes_over_a_queued_task_whose_cousins_run_elsewhere(center):
    filler = two_full_workers(center)
    reduction(center, "a", "b", "c", "d")
    assert all(center.state_of(f"{g}1") == "queued" for g in "abcd")

    center.finish(filler["w1"])
    assert center.processing_on("a1") == center.processing_on("a2") == "w1"
    center.finish(filler["w2"])

    # b meets a in ab-join, and a runs on w1: w2 takes c, the first whose cousins are nowhere.
    assert center.processing_on("c1") == center.processing_on("c2") == "w2"
    assert center.state_of("b1") == center.state_of("b2") == "queued"


def test_b_left_for_the_worker_of_its_cousins_and_d_for_the_other(center):
    filler = two_full_workers(center)
    reduction(center, "a", "b", "c", "d")
    center.finish(filler["w1"])
    center.finish(filler["w2"])

    for key in center.processing("w1"):  # w1's turn: b, whose cousins it holds, is first
        center.finish(key)
    assert center.processing_on("b1") == center.processing_on("b2") == "w1"
    for key in center.processing("w2"):
        center.finish(key)
    assert center.processing_on("d1") == center.processing_on("d2") == "w2"


def test_the_first_in_the_queue_is_taken_when_none_behind_it_is_better(center):
    filler = two_full_workers(center)
    reduction(center, "a", "b")
    center.finish(filler["w1"])
    center.finish(filler["w2"])

    # Only b is left, its cousins on w1: a free slot on w2 still takes it rather than idle.
    assert center.processing_on("b1") == center.processing_on("b2") == "w2"
