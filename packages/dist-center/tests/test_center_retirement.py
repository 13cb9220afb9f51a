"""Adaptive scaling and graceful retirement at the center: transcripts of what it recommends
(``adaptive-target``) and of a retirement (``retire-workers``): unstarted tasks go elsewhere,
data held only by the retiring worker is copied first, then the worker is told to close."""
from dist_center.events import WorkerJoined
from dist_protocol.messages import (AcquireReplicas, AdaptiveTarget, AdaptiveTargetReply,
                                    CloseWorker, RegisterWorker, RetireWorkers,
                                    RetireWorkersReply, StealReply, StealRequest, TaskFinished)

FEATURES = frozenset({"retire-workers"})


def join(center, address, nthreads=1, memory_limit=0, features=FEATURES):
    return center(WorkerJoined(RegisterWorker(address=address, nthreads=nthreads, name=address,
                                              memory_limit=memory_limit), None, features))


def target(center, target_duration=5.0) -> AdaptiveTargetReply:
    out = center.client_sent(AdaptiveTarget(id=7, target_duration=target_duration))
    [(to, reply)] = out
    assert to == "alice"
    assert isinstance(reply, AdaptiveTargetReply)
    assert reply.id == 7
    return reply


def retire(center, *workers, close=True):
    return center.client_sent(RetireWorkers(id=3, workers=list(workers), close=close))


def of_type(out, cls):
    return [(to, msg) for to, msg in out if isinstance(msg, cls)]


def run_timed(center, key, seconds):
    """Finish ``key`` where it runs, having taken ``seconds``."""
    address = center.processing_on(key)
    return center.worker_sent(address, TaskFinished(key=key, nbytes=8, type="int", start=100.0,
                                                    stop=100.0 + seconds))


# -- adaptive-target -------------------------------------------------------------------------

def test_no_work_and_no_workers_wants_nothing(center):
    reply = target(center)
    assert (reply.target, reply.threads, reply.workers, reply.retire) == (0, 0, 0, [])


def test_queued_work_without_workers_asks_for_a_worker_per_task_at_most(center):
    center.submit(*(f"inc-{i}" for i in range(3)))
    # Unknown durations count 0.5 s each: 1.5 s of work in 5 s fits one thread.
    assert target(center).target == 1
    # In 0.1 s it would take 15 threads, but 3 tasks never use more than 3.
    reply = target(center, target_duration=0.1)
    assert (reply.target, reply.threads) == (3, 3)


def test_the_target_follows_observed_durations_and_worker_size(center):
    join(center, "w1", nthreads=2)
    center.submit("slow-0")
    run_timed(center, "slow-0", 10.0)  # slow tasks take 10 s
    center.submit(*(f"slow-{i}" for i in range(1, 21)))
    reply = target(center, target_duration=20.0)
    # 20 tasks x 10 s in 20 s: 10 threads, i.e. 5 workers of 2 threads.
    assert (reply.threads, reply.target, reply.workers) == (10, 5, 1)


def test_idle_workers_are_named_for_retirement_least_data_first_keeping_one_with_data(center):
    for address in ("w1", "w2", "w3"):
        join(center, address)
    center.submit("x")
    center.finish("x", nbytes=100)
    holder = next(iter(center.who_has("x")))
    reply = target(center)
    assert reply.target == 1
    assert holder not in reply.retire and len(reply.retire) == 2
    center.release("x")
    assert sorted(target(center).retire) == ["w1", "w2", "w3"]


def test_busy_workers_are_not_named_for_retirement(center):
    join(center, "w1")
    join(center, "w2")
    center.submit("a")
    busy = center.processing_on("a")
    reply = target(center)
    assert reply.target == 1
    assert reply.retire == ["w2" if busy == "w1" else "w1"]


def test_memory_pressure_asks_for_twice_the_workers(center):
    join(center, "w1", memory_limit=1000)
    center.submit("x")
    center.finish("x", nbytes=700)  # 70% of the limit
    assert target(center).target == 2


def test_retiring_workers_no_longer_count(center):
    join(center, "w1")
    join(center, "w2")
    retire(center, "w2")
    assert target(center).workers == 1


# -- retire-workers --------------------------------------------------------------------------

def test_an_idle_worker_without_data_is_told_to_close_and_retired_when_it_leaves(center):
    join(center, "w1")
    join(center, "w2")
    out = retire(center, "w2")
    assert out == [("w2", CloseWorker(reason="retired: its data is on other workers"))]
    out = center.leave("w2", "unregistered", graceful=True)
    assert out == [("alice", RetireWorkersReply(id=3, retired={"w2": "w2"}, failed={}))]


def test_unique_data_is_copied_to_another_worker_before_the_close(center):
    join(center, "w1")
    center.submit("x")
    center.finish("x", nbytes=50)
    join(center, "w2")
    out = retire(center, "w1")
    assert out == [("w2", AcquireReplicas(who_has={"x": ["w1"]}, nbytes={"x": 50}))]
    assert center.state.workers["w1"].status == "retiring"
    out = center.keys_added("w2", {"x": 50})
    assert of_type(out, CloseWorker) == [("w1", CloseWorker(
        reason="retired: its data is on other workers"))]
    center.leave("w1", "unregistered", graceful=True)
    assert center.state_of("x") == "memory" and center.who_has("x") == {"w2"}


def test_data_already_elsewhere_is_not_copied(center):
    join(center, "w1")
    join(center, "w2")
    center.submit("x")
    center.finish("x")
    center.keys_added("w1", {"x": 8})
    center.keys_added("w2", {"x": 8})
    out = retire(center, "w1")
    assert of_type(out, AcquireReplicas) == []
    assert of_type(out, CloseWorker) != []


def test_unstarted_tasks_go_elsewhere_and_running_ones_finish_first(center):
    join(center, "w1", nthreads=1)
    center.submit(*(f"t{i}" for i in range(4)))
    join(center, "w2", nthreads=1)
    on_w1 = center.processing("w1")
    out = retire(center, "w1")
    assert of_type(out, StealRequest) == [("w1", StealRequest(keys=on_w1))]
    started, rest = on_w1[0], on_w1[1:]
    center.worker_sent("w1", StealReply(keys=rest, kept=[started]))
    assert all(center.task(key).processing_on != "w1" for key in rest)
    assert center.processing("w1") == [started]
    # The running task finishes there; its result is then copied before the close.
    out = center.finished("w1", started, nbytes=9)
    assert of_type(out, AcquireReplicas) == [
        ("w2", AcquireReplicas(who_has={started: ["w1"]}, nbytes={started: 9}))]
    assert of_type(out, CloseWorker) == []


def test_no_new_task_goes_to_a_retiring_worker(center):
    join(center, "w1")
    center.submit("x")
    center.finish("x")
    join(center, "w2")
    retire(center, "w1")
    center.submit(center.spec("y", "x"))
    assert center.processing_on("y") == "w2"


def test_without_another_running_worker_the_retirement_fails_and_the_worker_stays(center):
    join(center, "w1")
    center.submit("x")
    center.finish("x")
    out = retire(center, "w1")
    [(to, reply)] = of_type(out, RetireWorkersReply)
    assert reply.retired == {} and "no other running worker" in reply.failed["w1"]
    assert center.state.workers["w1"].status == "running"
    center.submit("y")
    assert center.processing_on("y") == "w1"


def test_a_worker_without_the_feature_is_reported_retired_once_its_data_is_elsewhere(center):
    join(center, "old", features=frozenset())
    join(center, "w2")
    out = retire(center, "old")
    assert of_type(out, CloseWorker) == []
    assert out == [("alice", RetireWorkersReply(id=3, retired={"old": "old"}, failed={}))]
    assert center.state.workers["old"].status == "retiring"  # stopped by whoever started it


def test_without_close_the_worker_is_not_told_to_close(center):
    join(center, "w1")
    join(center, "w2")
    out = retire(center, "w1", close=False)
    assert out == [("alice", RetireWorkersReply(id=3, retired={"w1": "w1"}, failed={}))]


def test_a_worker_that_dies_while_retiring_fails_and_its_data_is_recomputed(center):
    join(center, "w1")
    center.submit("x")
    center.finish("x")
    join(center, "w2")
    retire(center, "w1")
    out = center.leave("w1", "connection closed")
    [(to, reply)] = of_type(out, RetireWorkersReply)
    assert reply.failed == {"w1": "it left before its retirement finished"}
    assert center.processing_on("x") == "w2"


def test_a_copy_target_that_leaves_is_replaced(center):
    join(center, "w1")
    center.submit("x")
    center.finish("x", nbytes=5)
    join(center, "w2")
    retire(center, "w1")
    join(center, "w3")
    out = center.leave("w2", "connection closed")
    assert of_type(out, AcquireReplicas) == [
        ("w3", AcquireReplicas(who_has={"x": ["w1"]}, nbytes={"x": 5}))]


def test_unknown_workers_fail_by_name(center):
    join(center, "w1")
    out = retire(center, "nope")
    assert out == [("alice", RetireWorkersReply(id=3, retired={},
                                                failed={"nope": "no such worker"}))]


def test_two_workers_retire_together_onto_the_third(center):
    for address in ("w1", "w2", "w3"):
        join(center, address)
    center.submit("a", "b", "c")
    for key in "abc":
        center.finish(key)
    held = {key: next(iter(center.who_has(key))) for key in "abc"}
    out = retire(center, "w1", "w2")
    copies = of_type(out, AcquireReplicas)
    assert {to for to, _ in copies} <= {"w3"}
    for to, order in copies:
        center.keys_added(to, {key: 8 for key in order.who_has})
    for address in ("w1", "w2"):
        out = center.leave(address, "unregistered", graceful=True)
    [(_, reply)] = of_type(out, RetireWorkersReply)
    assert reply.retired == {"w1": "w1", "w2": "w2"}
    assert all(center.who_has(key) == {"w3"} for key in held)


def test_workers_that_came_and_went_leave_nothing_behind(center):
    """A center up for days sees workers restart, each at a new address."""
    for number in range(5):
        join(center, f"tcp://w:{number}")
        center.leave(f"tcp://w:{number}")
    assert center.state.retirements.closable == set()
    join(center, "tcp://w:9")
    retire(center, "tcp://w:9")
    assert "tcp://w:9" in center.state.retirements.closing
    center.leave("tcp://w:9")  # told to close, it did: retired
    assert center.state.retirements.closable == set()
    assert center.state.retirements.closing == set()
