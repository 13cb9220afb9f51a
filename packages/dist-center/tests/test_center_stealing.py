"""Work stealing: tasks waiting on a busy worker move to an idle one, and only when worth it."""
from dist_protocol.messages import StealReply, StealRequest, TaskFinished


def steal_requests(out):
    return [(to, msg.keys) for to, msg in out if isinstance(msg, StealRequest)]


def pile_on_w1(center, n, nbytes=8):
    """``n`` tasks on an input held by w1 only: they all go to w1, with w2 idle."""
    center.join("w1")
    center.join("w2")
    center.submit("x")
    center.finished(center.processing_on("x"), "x", nbytes=nbytes)
    if center.who_has("x") != {"w1"}:
        raise AssertionError("x should be on w1")
    return center.submit(*(center.spec(f"t{i}", "x") for i in range(n)))


def test_an_idle_worker_gets_tasks_waiting_on_a_busy_one(center):
    out = pile_on_w1(center, 10)

    assert center.processing("w1") == [f"t{i}" for i in range(10)]
    # The newest tasks are the least likely to have started; w2 takes as many as it has room.
    assert steal_requests(out) == [("w1", ["t9", "t8"])]

    out = center.worker_sent("w1", StealReply(keys=["t9", "t8"]))

    assert out == [("w2", center.compute("t9", {"x": ["w1"]}, {"x": 8})),
                   ("w2", center.compute("t8", {"x": ["w1"]}, {"x": 8}))]
    assert center.processing_on("t9") == center.processing_on("t8") == "w2"
    assert len(center.processing("w1")) == 8
    assert center.state.stealing == {}


def test_tasks_the_busy_worker_already_started_stay_there(center):
    pile_on_w1(center, 10)

    out = center.worker_sent("w1", StealReply(keys=["t9"], kept=["t8"]))

    assert center.processing_on("t9") == "w2"
    assert center.processing_on("t8") == "w1"
    assert center.state.stealing == {}
    assert ("w2", center.compute("t9", {"x": ["w1"]}, {"x": 8})) in out


def test_a_stolen_task_finishes_on_the_thief_and_the_idle_worker_asks_again(center):
    pile_on_w1(center, 10)
    center.worker_sent("w1", StealReply(keys=["t9", "t8"]))
    center.finished("w2", "t9")
    out = center.finished("w2", "t8")

    assert steal_requests(out) == [("w1", ["t7", "t6"])]


def test_nothing_is_stolen_when_moving_the_inputs_costs_more_than_running_the_task(center):
    center.join("w1")
    center.join("w2")
    center.submit("x")
    center.worker_sent("w1", TaskFinished(key="x", nbytes=10**7, type="bytes", start=1.0,
                                          stop=1.001))
    out = center.submit(*(center.spec(f"x-{i}", "x") for i in range(3)))
    # x-* is a prefix of its own, so unknown: 0.5 s each, less than moving 10 MB (1 s)

    assert steal_requests(out) == []


def test_tiny_backlogs_are_left_alone(center):
    """Known-fast tasks: the busy worker finishes before stolen ones would start elsewhere."""
    center.join("w1")
    center.join("w2")
    center.submit("x")
    center.worker_sent("w1", TaskFinished(key="x", nbytes=8, type="int", start=1.0, stop=1.0001))
    center.submit(center.spec("x-0", "x"))
    center.worker_sent("w1", TaskFinished(key="x-0", nbytes=8, type="int", start=1.0,
                                          stop=1.0001))

    out = center.submit(*(center.spec(f"x-{i}", "x") for i in range(1, 6)))

    assert steal_requests(out) == []


def test_a_task_restricted_to_its_worker_is_not_stolen(center):
    center.join("w1")
    center.join("w2")
    out = center.submit(*(center.spec(f"t{i}", workers=["w1"]) for i in range(5)))

    assert center.processing("w1") == [f"t{i}" for i in range(5)]
    assert steal_requests(out) == []


def test_a_task_released_while_being_stolen_is_not_run_anywhere(center):
    pile_on_w1(center, 10)
    center.release("t9")

    out = center.worker_sent("w1", StealReply(keys=["t9", "t8"]))

    assert center.state_of("t9") == "forgotten"
    assert ("w2", center.compute("t8", {"x": ["w1"]}, {"x": 8})) in out
    assert all(getattr(msg, "key", None) != "t9" for _, msg in out)


def test_a_thief_that_left_before_the_reply_leaves_the_task_to_normal_placement(center):
    pile_on_w1(center, 10)
    center.leave("w2")

    out = center.worker_sent("w1", StealReply(keys=["t9", "t8"]))

    assert center.processing_on("t9") == center.processing_on("t8") == "w1"
    assert ("w1", center.compute("t9", {"x": ["w1"]}, {"x": 8})) in out
    assert center.state.stealing == {}


def test_a_victim_that_dies_before_replying_leaves_no_pending_steals(center):
    pile_on_w1(center, 10)
    center.leave("w1")

    assert center.state.stealing == {}
    assert center.state_of("t9") == "waiting"  # for x, made again on w2
    assert center.processing_on("x") == "w2"


def test_a_late_reply_from_a_worker_that_left_is_ignored(center):
    pile_on_w1(center, 4)
    center.join("w3")
    center.worker_sent("w1", StealReply(keys=[], kept=["t3"]))
    center.leave("w1")

    assert center.worker_sent("w1", StealReply(keys=["t2"])) == []


def test_a_worker_that_pauses_gives_up_its_waiting_tasks_to_the_running_ones(center):
    assert steal_requests(pile_on_w1(center, 4)) == [("w1", ["t3"])]  # balancing, for w2

    out = center.heartbeat("w1", paused=True)

    assert steal_requests(out) == [("w1", ["t0", "t1", "t2"])]  # all the rest
    center.worker_sent("w1", StealReply(keys=["t3"]))
    out = center.worker_sent("w1", StealReply(keys=["t1", "t2"], kept=["t0"]))
    assert [to for to, _ in out] == ["w2"] * 2
    assert sorted(msg.key for _, msg in out) == ["t1", "t2"]
    assert center.processing("w1") == ["t0"] and center.state.stealing == {}
    assert sorted(center.processing("w2")) == ["t1", "t2", "t3"]
    assert center.heartbeat("w1", paused=True) == []  # still paused: asked once


def test_a_paused_worker_keeps_its_tasks_when_no_other_worker_runs(center):
    center.join("w1", nthreads=1)
    center.join("w2", nthreads=1)
    center.heartbeat("w2", paused=True)
    center.submit("a", "b", "c")

    assert steal_requests(center.heartbeat("w1", paused=True)) == []
    assert center.processing("w1") == ["a", "b"]


def test_fast_tasks_waiting_behind_a_long_one_move_to_an_idle_worker(center):
    """w1's only thread runs a task of a kind never seen to finish (a long computation, a
    wait on an event): the known-fast tasks sent behind it would wait for its end, for ever
    if it waits on one of them, while w2 has nothing to do."""
    center.join("w1")
    center.join("w2")
    center.submit("inc-a")
    center.worker_sent("w1", TaskFinished(key="inc-a", nbytes=8, type="int", start=1.0,
                                          stop=1.0001))
    center.submit("wait-0")
    center.submit(*(f"inc-{i}" for i in range(6)))
    behind = center.processing("w1")[1:]
    assert center.processing("w1")[0] == "wait-0" and behind
    requests = []
    for key in center.processing("w2"):
        requests = steal_requests(center.worker_sent(
            "w2", TaskFinished(key=key, nbytes=8, type="int", start=1.0, stop=1.0001)))

    # (the newest; once it runs on w2, w2 asks again)
    assert requests == [("w1", [behind[-1]])]
