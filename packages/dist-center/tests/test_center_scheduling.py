"""Where the center sends work: spreading, queueing, data locality, restrictions, priorities."""
from dist_protocol.messages import (FreeKeys, KeyCancelled, KeyInMemory, TaskFinished,
                                    WorkerRegistered)


def test_tasks_without_inputs_spread_over_workers_and_queue_beyond_capacity(center):
    assert center.join("w1") == [("w1", WorkerRegistered(address="w1"))]
    assert center.join("w2") == [("w2", WorkerRegistered(address="w2"))]

    out = center.submit("a", "b", "c", "d", "e")

    # One thread each: a task running and one buffered per thread; the rest waits here.
    assert out == [("w1", center.compute("a")), ("w2", center.compute("b")),
                   ("w1", center.compute("c")), ("w2", center.compute("d"))]
    assert center.state_of("e") == "queued"
    assert list(center.state.queue) == ["e"]


def test_a_worker_that_frees_a_slot_gets_queued_work(center):
    center.join("w1")
    center.join("w2")
    center.submit("a", "b", "c", "d", "e")

    out = center.finished("w2", "b")

    assert out == [("alice", KeyInMemory(key="b", nbytes=8, type="int", workers=["w2"])),
                   ("w2", center.compute("e"))]
    assert center.processing("w2") == ["d", "e"]


def test_a_worker_joining_later_gets_queued_work(center):
    center.join("w1")
    assert center.submit("a", "b", "c", "d") == [("w1", center.compute("a")),
                                                ("w1", center.compute("b"))]

    out = center.join("w2", nthreads=2)

    assert out == [("w2", WorkerRegistered(address="w2")),
                   ("w2", center.compute("c")), ("w2", center.compute("d"))]
    assert not center.state.queue


def test_without_any_worker_tasks_wait_for_the_first_one(center):
    assert center.submit("a") == []
    assert center.state_of("a") == "no-worker"

    assert center.join("w1") == [("w1", WorkerRegistered(address="w1")),
                                 ("w1", center.compute("a"))]


def test_short_tasks_buffer_more_work_per_thread(center):
    center.join("w1")
    center.submit(*(f"t{i}" for i in range(10)))
    assert center.processing("w1") == ["t0", "t1"]

    # 1 ms per task: the buffer holds about BUFFER_SECONDS (5 ms) of work per thread.
    out = center.worker_sent("w1", TaskFinished(key="t0", nbytes=8, type="int",
                                                start=100.0, stop=100.001))

    assert [msg.key for to, msg in out if to == "w1"] == ["t2", "t3", "t4", "t5", "t6"]
    assert center.processing("w1") == ["t1", "t2", "t3", "t4", "t5", "t6"]


def test_short_tasks_with_inputs_leave_the_buffer_of_long_tasks_without_inputs_alone(center):
    # A shuffle: reads of 60 ms each (no inputs), then splits of a millisecond that read them.
    center.join("w1")
    center.join("w2")
    center.submit(*(f"read{i}" for i in range(20)))
    center.worker_sent("w1", TaskFinished(key="read0", nbytes=8, type="int",
                                          start=100.0, stop=100.06))
    splits = [f"split{i}" for i in range(30)]
    center.submit(*(center.spec(key, "read0") for key in splits))
    for key in splits:
        center.worker_sent("w1", TaskFinished(key=key, nbytes=8, type="int",
                                              start=100.06, stop=100.061))

    # The margin stays the reads' (one more per thread): the first worker to report splits
    # does not take the queue for itself while the other runs its reads.
    reads = [key for key in center.processing("w1") if key.startswith("read")]
    assert len(reads) == 2
    assert len(center.processing("w2")) == 2


def test_queued_work_runs_in_priority_order(center):
    center.join("w1")
    center.submit("a", "b")  # fill the worker
    center.submit(center.spec("low"), center.spec("high", priority=5),
                  center.spec("higher", priority=9), center.spec("high-too", priority=5))

    started = []
    for key in ["a", "b", "higher", "high", "high-too", "low"]:
        started += [msg.key for to, msg in center.finish(key) if to == "w1"]

    # Highest priority first; equal priorities in submission order.
    assert started == ["higher", "high", "high-too", "low"]
    assert not center.state.queue


def test_priority_travels_with_the_task(center):
    center.join("w1")
    assert center.submit(center.spec("urgent", priority=3)) == [
        ("w1", center.compute("urgent", priority=3))]


def test_a_task_goes_where_most_of_its_input_bytes_are(center):
    for address in ("w1", "w2", "w3"):
        center.join(address)
    center.submit("big", "small")
    center.finished("w1", "big", nbytes=1000)
    center.finished("w2", "small", nbytes=10)

    out = center.submit(center.spec("total", "big", "small"))

    # w1 receives 10 bytes, w2 1000, the idle w3 1010.
    assert out == [("w1", center.compute("total", who_has={"big": ["w1"], "small": ["w2"]},
                                         nbytes={"big": 1000, "small": 10}))]


def test_equal_bytes_to_move_go_to_the_least_busy_worker(center):
    center.join("w1")
    center.join("w2")
    center.submit("x", "y")
    center.finished("w1", "x", nbytes=10)
    center.finished("w2", "y", nbytes=10)
    center.submit("busy")
    assert center.processing_on("busy") == "w1"

    out = center.submit(center.spec("z", "x", "y"))

    assert out == [("w2", center.compute("z", who_has={"x": ["w1"], "y": ["w2"]},
                                         nbytes={"x": 10, "y": 10}))]


def test_once_its_kind_has_run_a_task_goes_where_it_starts_first(center):
    # An output of a shuffle: pieces on both workers, a few more bytes of them on w1, which
    # has three outputs to run first (50 ms each, as the first one took).
    center.join("w1")
    center.join("w2")
    center.submit("p1", "p2", "q1", "q2")
    for key, address, nbytes in (("p1", "w1", 60_000), ("q1", "w1", 60_000),
                                 ("p2", "w2", 50_000), ("q2", "w2", 50_000)):
        center.finished(address, key, nbytes=nbytes)
    center.submit(*(center.spec(f"out-{i}", "p1", "p2") for i in range(4)))
    assert center.processing("w1") == ["out-0", "out-1", "out-2", "out-3"]  # none ran yet: bytes
    center.worker_sent("w1", TaskFinished(key="out-0", nbytes=8, type="int",
                                          start=100.0, stop=100.05))

    out = center.submit(center.spec("out-4", "q1", "q2"))

    # w2 receives 60 kB (6 ms at the assumed bandwidth) and starts at once; on w1 it would wait
    # 150 ms for 10 kB less. Large inputs still hold a task where they are (above).
    assert [to for to, msg in out] == ["w2"]


def test_a_dependent_waits_for_its_inputs_then_follows_them(center):
    center.join("w1")
    center.join("w2")
    out = center.submit("a", "b", center.spec("c", "a", "b"))
    assert out == [("w1", center.compute("a")), ("w2", center.compute("b"))]
    assert center.state_of("c") == "waiting"

    assert center.finished("w1", "a", nbytes=100) == [
        ("alice", KeyInMemory(key="a", nbytes=100, type="int", workers=["w1"]))]
    assert center.state_of("c") == "waiting"

    out = center.finished("w2", "b", nbytes=1)
    assert out == [("alice", KeyInMemory(key="b", nbytes=1, type="int", workers=["w2"])),
                   ("w1", center.compute("c", who_has={"a": ["w1"], "b": ["w2"]},
                                         nbytes={"a": 100, "b": 1}))]


def test_workers_restriction_by_address(center):
    center.join("w1")
    center.join("w2")

    out = center.submit(center.spec("a", workers=["w2"]), center.spec("b", workers=["w2"]),
                        center.spec("c", workers=["w2"]))

    # A restricted task goes to its worker even beyond the worker's buffer.
    assert out == [("w2", center.compute("a")), ("w2", center.compute("b")),
                   ("w2", center.compute("c"))]


def test_workers_restriction_by_name(center):
    center.join("w1", name="alpha")
    center.join("w2", name="beta")

    assert center.submit(center.spec("a", workers=["beta"])) == [("w2", center.compute("a"))]
    assert center.submit(center.spec("b", workers=["alpha", "w2"])) == [
        ("w1", center.compute("b"))]


def test_a_host_in_workers_names_every_worker_on_it(center):
    center.join("10.0.0.1:4000")
    center.join("10.0.0.2:4000")
    center.join("10.0.0.2:4001")

    assert center.submit(center.spec("a", workers=["10.0.0.1"])) == [
        ("10.0.0.1:4000", center.compute("a"))]
    out = center.submit(center.spec("b", workers=["10.0.0.2"]),
                        center.spec("c", workers=["10.0.0.2"]))
    assert sorted(address for address, _ in out) == ["10.0.0.2:4000", "10.0.0.2:4001"]
    assert center.submit(center.spec("d", workers=["10.0.0.3"])) == []
    assert center.state_of("d") == "no-worker"


def test_restricted_task_waits_until_such_a_worker_joins(center):
    center.join("w1", name="alpha")
    assert center.submit(center.spec("a", workers=["gamma"])) == []
    assert center.state_of("a") == "no-worker"
    assert center.join("w2", name="beta") == [("w2", WorkerRegistered(address="w2"))]
    assert center.state_of("a") == "no-worker"

    out = center.join("w3", name="gamma")

    assert out == [("w3", WorkerRegistered(address="w3")), ("w3", center.compute("a"))]


def test_restricted_task_goes_back_to_no_worker_when_its_worker_leaves(center):
    center.join("w1", name="alpha")
    center.join("w2", name="beta")
    center.submit(center.spec("a", workers=["beta"]))

    assert center.leave("w2", graceful=True) == []
    assert center.state_of("a") == "no-worker"
    assert center.join("w2", name="beta") == [("w2", WorkerRegistered(address="w2")),
                                              ("w2", center.compute("a"))]


def test_allow_other_workers_falls_back_to_any_worker(center):
    center.join("w1")
    out = center.submit(center.spec("a", workers=["gamma"], allow_other_workers=True))
    assert out == [("w1", center.compute("a"))]


def test_a_paused_worker_gets_no_new_work_until_it_resumes(center):
    center.join("w1")
    center.join("w2")
    assert center.heartbeat("w1", paused=True) == []
    assert center.state.workers["w1"].status == "paused"

    out = center.submit("a", "b", "c")
    assert out == [("w2", center.compute("a")), ("w2", center.compute("b"))]
    assert center.state_of("c") == "queued"

    assert center.heartbeat("w1", paused=False) == [("w1", center.compute("c"))]
    assert center.state.workers["w1"].status == "running"


def test_when_every_worker_is_paused_tasks_wait_for_one_to_resume(center):
    center.join("w1")
    center.heartbeat("w1", paused=True)
    assert center.submit(center.spec("a", workers=["w1"]), "b") == []
    assert (center.state_of("a"), center.state_of("b")) == ("no-worker", "no-worker")
    assert center.heartbeat("w1", paused=True, memory=1) == []  # still paused: nothing moves

    out = center.heartbeat("w1", paused=False)

    assert sorted(msg.key for _, msg in out) == ["a", "b"]
    assert {to for to, _ in out} == {"w1"}


def test_cancelling_running_work_lets_queued_work_start(center):
    center.join("w1")
    center.submit("a", "b", "c")
    assert center.state_of("c") == "queued"

    out = center.cancel("a", "b")

    assert out == [("w1", FreeKeys(keys=["a", "b"])),
                   ("alice", KeyCancelled(key="a")), ("alice", KeyCancelled(key="b")),
                   ("w1", center.compute("c"))]
