"""Every transition a fault touches: workers that die or hang, lost data, stale reports."""
import pytest
from dist_center.events import ClientConnected, TimeElapsed, WorkerLeft, WorkerSent
from dist_protocol.messages import (FreeKeys, KeyInMemory, KeyLost, KeyRecomputing, TaskErred,
                                    TaskFinished,
                                    Unregister, WorkerRegistered)


def in_memory(key, workers, nbytes=8, type="int"):
    return KeyInMemory(key=key, nbytes=nbytes, type=type, workers=workers)


# -- a worker dies while running tasks ----------------------------------------------------------

def test_tasks_running_on_a_dead_worker_are_rescheduled(center):
    center.join("w1")
    center.join("w2")
    center.submit("a", "b")
    assert center.processing_on("a") == "w1"

    out = center.leave("w1", reason="connection reset")

    assert out == [("w2", center.compute("a"))]
    assert center.task("a").died_on == ("w1",)
    assert center.finished("w2", "a") == [("alice", in_memory("a", ["w2"]))]


def test_only_tasks_the_dead_worker_was_running_become_suspect(center):
    center.join("w1")
    center.submit("running", "buffered")

    assert center.leave("w1") == []
    assert center.state_of("running") == center.state_of("buffered") == "no-worker"
    assert (center.task("running").died_on, center.task("buffered").died_on) == (("w1",), ())
    center.join("w2")
    assert sorted(center.processing("w2")) == ["buffered", "running"]


def test_a_worker_that_says_goodbye_leaves_no_suspects(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")

    assert center.worker_sent("w1", Unregister()) == [("w2", center.compute("a"))]
    assert "w1" not in center.state.workers
    assert center.task("a").died_on == ()


def test_a_task_that_killed_three_workers_fails_naming_the_task_and_workers(center, match):
    for address in ("w1", "w2", "w3", "w4"):
        center.join(address)
    center.submit("bomb", center.spec("after", "bomb"))

    assert center.leave("w1", reason="killed") == [("w2", center.compute("bomb"))]
    assert center.leave("w2", reason="killed") == [("w3", center.compute("bomb"))]
    out = center.leave("w3", reason="segfault")

    why = ("task bomb was running on workers that died 3 times: w1, w2, w3 "
           "(the last: segfault); giving up")
    assert out == [("alice", match(TaskErred, key="bomb", exception_type="KilledWorker",
                                   message=why)),
                   ("alice", match(TaskErred, key="after", exception_type="KilledWorker",
                                   message=why))]
    assert center.state_of("bomb") == "erred"

    # The cluster goes on.
    assert center.submit("next") == [("w4", center.compute("next"))]


def test_error_texts_name_a_string_key_as_the_user_wrote_it(center, match):
    # "17-load" travels as "str:17-load" (it could be read as the int 17's name); the texts
    # a user reads say 17-load, as Future.key does.
    for address in ("w1", "w2", "w3"):
        center.join(address)
    center.submit("str:17-load")
    center.leave("w1", reason="killed")
    center.leave("w2", reason="killed")

    [(_, erred)] = center.leave("w3", reason="killed")
    assert erred.key == "str:17-load"
    assert erred.message.startswith("task 17-load was running on workers that died 3 times")

    center.join("w4")
    [(_, missing)] = center.submit(center.spec("str:2-next", "str:1-never-submitted"))
    assert missing.message.startswith("task 2-next depends on 1-never-submitted, which")


def test_a_worker_removed_for_silence_that_registers_again_had_not_died(center):
    """A task holding the GIL keeps its worker from answering: removed for silence, the
    worker registers again once the task lets go. Three such removals are no KilledWorker."""
    center.join("busy")
    center.submit("hold-the-gil")
    for _ in range(5):
        center(WorkerLeft("busy", "no heartbeat for 5.3 s", silent=True))
        assert center.task("hold-the-gil").died_on == ("busy",)
        center.join("busy")
        assert center.task("hold-the-gil").died_on == ()
    assert center.state_of("hold-the-gil") == "processing"


def silence(center, address):
    return center(WorkerLeft(address, "no heartbeat for 5.1 s", silent=True))


def held_after_two_silences(center):
    """``gil`` silenced w1, then w2 (as a task holding the GIL for minutes would)."""
    for address in ("w1", "w2", "w3"):
        center.join(address)
    center.submit("gil", center.spec("after", "gil"))
    assert center.processing_on("gil") == "w1"
    assert silence(center, "w1") == [("w2", center.compute("gil"))]
    return silence(center, "w2")


def test_a_task_that_silenced_two_workers_is_held_not_sent_to_a_third(center):
    assert held_after_two_silences(center) == []
    assert center.state_of("gil") == "no-worker"
    assert center.processing("w3") == []
    # Other workers joining do not take it either; the story says why it waits.
    center.join("w4")
    assert center.state_of("gil") == "no-worker"
    [held] = [entry for entry in center.state.story("gil") if entry[2] == "no-worker"]
    assert held[3].startswith("held: workers w1, w2 went silent running it; it waits for one "
                              "to come back")


def test_a_held_task_finishes_when_a_silent_worker_registers_with_its_result(center, match):
    held_after_two_silences(center)

    out = center.join("w1", keys={"gil": 8})

    assert ("alice", match(KeyInMemory, key="gil", workers=["w1"])) in out
    assert center.state_of("gil") == "memory"
    assert center.processing_on("after") == "w1"
    assert center.task("gil").died_on == ("w2",)  # w2 may still come back


def test_a_held_task_runs_again_when_a_silent_worker_registers_without_it(center):
    held_after_two_silences(center)

    center.join("w2")  # (a worker that started over: nothing it held is left)

    assert center.state_of("gil") == "processing"


def test_a_held_task_runs_again_once_the_connections_of_its_workers_close(center):
    held_after_two_silences(center)

    assert center.leave("w1", reason="connection reset") == []  # w2 may still come back
    assert center.state_of("gil") == "no-worker"
    assert center.leave("w2", reason="connection reset") == [("w3", center.compute("gil"))]
    # They did die: both count, and the next death of a worker running it is the third.
    assert center.task("gil").died_on == ("w1", "w2")


def test_a_held_task_whose_workers_died_fails_as_killed_worker_when_deaths_add_up(center,
                                                                                  match):
    for address in ("w1", "w2", "w3", "w4"):
        center.join(address)
    center.submit("bomb")
    center.leave("w1", reason="segfault")
    silence(center, "w2")
    silence(center, "w3")
    assert center.state_of("bomb") == "no-worker"
    center.leave("w2")

    out = center.leave("w3")

    assert out == [("alice", match(TaskErred, key="bomb", exception_type="KilledWorker"))]


def test_a_held_task_whose_input_was_lost_with_a_silent_worker_stays_held(center):
    """Its input ran where it did, and was lost with each silent worker: made again on the
    third worker, it does not take the held task there."""
    for address in ("w1", "w2", "w3"):
        center.join(address)
    center.submit("x", center.spec("gil", "x"))
    center.finish("x")
    assert center.processing_on("gil") == "w1"
    silence(center, "w1")  # x is made again on w2, and gil runs there
    center.finish("x")
    assert center.processing_on("gil") == "w2"

    assert silence(center, "w2") == [("w3", center.compute("x"))]
    center.finish("x")
    assert center.state_of("gil") == "no-worker"
    assert center.processing("w3") == []

    out = center.join("w1")  # (without the result: it runs where its input is)

    assert out[-1] == ("w3", center.compute("gil", who_has={"x": ["w3"]}, nbytes={"x": 8}))


def test_killed_worker_counts_only_the_deaths_that_counted(center, match):
    """A worker removed for silence that may still come back is no death: the text neither
    counts nor lists it among the deaths."""
    for address in ("w1", "w2", "w3", "w4", "w5"):
        center.join(address)
    center.submit("bomb")
    silence(center, "w1")
    center.leave("w2", reason="killed")
    center.leave("w3", reason="killed")

    out = center.leave("w4", reason="segfault")

    why = ("task bomb was running on workers that died 3 times: w2, w3, w4 (the last: "
           "segfault; silent while running it: w1); giving up")
    assert out == [("alice", match(TaskErred, key="bomb", exception_type="KilledWorker",
                                   message=why))]


def test_a_task_held_past_the_limit_fails_as_killed_worker_naming_the_silence(center, match):
    now = [1000.0]
    center.state.clock = lambda: now[0]
    center.state.held.limit = 300.0
    held_after_two_silences(center)
    now[0] += 299
    assert center(TimeElapsed()) == []

    now[0] += 1
    out = center(TimeElapsed())

    why = ("task gil made the workers running it go silent (no heartbeat: it may hold the "
           "GIL): w1, w2, and none came back within 300 s; giving up")
    assert out == [("alice", match(TaskErred, key="gil", exception_type="KilledWorker",
                                   message=why)),
                   ("alice", match(TaskErred, key="after", exception_type="KilledWorker",
                                   message=why))]
    assert center.submit("next") == [("w3", center.compute("next"))]


def test_a_worker_silent_once_is_no_suspect_and_its_tasks_move_at_once(center):
    """A hung worker (stopped, partitioned) is removed within the timeout as before: what it
    ran goes to the others."""
    for address in ("w1", "w2"):
        center.join(address, nthreads=2)
    center.submit("a", "b", "c")
    on_w1 = center.processing("w1")

    out = silence(center, "w1")

    assert sorted(key for _, message in out for key in [message.key]) == sorted(on_w1)
    assert all(to == "w2" for to, _ in out)


def test_a_released_held_task_is_forgotten_and_a_new_one_of_its_key_runs(center):
    held_after_two_silences(center)
    center.release("gil", "after")
    assert center.state_of("gil") == "forgotten"

    assert center.submit("gil") == [("w3", center.compute("gil"))]
    assert center.join("w1") == [("w1", WorkerRegistered(address="w1"))]


def test_a_released_held_task_keeps_no_record_of_its_hold(center):
    held_after_two_silences(center)
    center.release("gil", "after")
    assert center(TimeElapsed()) == []
    assert center.state.held.holds == {}


def test_a_held_task_released_and_wanted_again_is_held_no_more(center):
    """Released while held, ``gil`` stays as the lineage of ``after`` (in memory on ``w3``);
    wanted again, it runs on ``w3``, which dies: the hold of its earlier stay in no-worker
    kept it from the worker joining next."""
    for address in ("keeper", "w1", "w2", "w3"):
        center.join(address)
    center.submit(center.spec("gil", workers=["keeper", "w1", "w2"], allow_other_workers=True))
    center.finish("gil")
    center.submit(center.spec("after", "gil"))
    center.finish("after")
    center.keys_added("w3", {"after": 8})
    center.leave("keeper", reason="killed")
    silence(center, center.processing_on("gil"))
    silence(center, center.processing_on("gil"))
    center.release("gil")
    assert center.state_of("gil") == "released"
    assert center.submit(center.spec("gil")) == [("w3", center.compute("gil"))]
    center.leave("w3", reason="killed")
    assert center.state_of("gil") == "no-worker"

    assert center.join("w4")[1:] == [("w4", center.compute("gil"))]


def test_a_task_that_killed_workers_says_how_full_the_last_ones_memory_was(center, match):
    for address in ("w1", "w2", "w3"):
        center.join(address, memory_limit=1000)
    center.submit("hog")
    center.leave("w1", reason="connection closed")
    center.leave("w2", reason="connection closed")
    center.heartbeat("w3", memory=830)  # a worker pausing reports at once; then it restarts

    out = center.leave("w3", reason="connection closed")

    assert out == [("alice", match(TaskErred, key="hog", exception_type="KilledWorker", message=(
        "task hog was running on workers that died 3 times: w1, w2, w3 (the last: connection "
        "closed, with 83% of its memory limit in use when last heard from); giving up")))]


# -- a worker dies holding results ------------------------------------------------------------

def test_a_result_lost_with_its_worker_is_recomputed(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    center.finished("w1", "a")

    assert center.leave("w1") == [("w2", center.compute("a"))]
    assert center.state_of("a") == "processing"
    assert center.finished("w2", "a") == [("alice", in_memory("a", ["w2"]))]


def test_clients_that_take_key_recomputing_are_told_the_key_is_pending_again(center):
    center(ClientConnected("bob", frozenset({"key-recomputing"})))
    center.join("w1")
    center.join("w2")
    center.submit("a")  # alice: an older client, without the feature
    center.submit("a", client="bob")
    center.finished("w1", "a")

    out = center.leave("w1")

    assert out == [("bob", KeyRecomputing(key="a")), ("w2", center.compute("a"))]
    assert sorted(center.finished("w2", "a"), key=lambda sent: sent[0]) == [
        ("alice", in_memory("a", ["w2"])), ("bob", in_memory("a", ["w2"]))]


def test_a_result_with_another_copy_survives_its_worker(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    center.finished("w1", "a")
    center.keys_added("w2", {"a": 8})

    assert center.leave("w1") == []
    assert center.who_has("a") == {"w2"}


def test_a_lost_result_is_recomputed_from_inputs_that_were_released(center):
    center.join("w1")
    center.join("w2")
    center.submit("a", center.spec("b", "a"), center.spec("c", "b"), wanted=["c"])
    center.finish("a")
    center.finish("b")
    center.finish("c")
    assert (center.state_of("a"), center.state_of("b")) == ("released", "released")
    [holder] = center.who_has("c")
    other = "w2" if holder == "w1" else "w1"

    assert center.leave(holder) == [(other, center.compute("a"))]
    assert [center.state_of(k) for k in "abc"] == ["processing", "waiting", "waiting"]

    assert center.finished(other, "a") == [
        (other, center.compute("b", who_has={"a": [other]}, nbytes={"a": 8}))]
    assert center.finished(other, "b") == [  # (an input let go of before its reader is sent)
        (other, FreeKeys(keys=["a"])),
        (other, center.compute("c", who_has={"b": [other]}, nbytes={"b": 8}))]
    assert center.finished(other, "c") == [("alice", in_memory("c", [other])),
                                           (other, FreeKeys(keys=["b"]))]


@pytest.mark.parametrize("length", [2, 5, 12])
def test_a_chain_lost_whole_is_recomputed_from_its_first_link(center, length):
    """Every link is wanted and held by the dead worker: only the first can start at once,
    whatever order the center meets the lost keys in."""
    center.join("w1")
    center.join("w2")
    chain = [center.spec("k0", workers=["w1"])]
    chain += [center.spec(f"k{i}", f"k{i - 1}", workers=["w1"]) for i in range(1, length)]
    center.submit(*chain)
    for i in range(length):
        center.finished("w1", f"k{i}")
    center.submit(center.spec("reader", f"k{length - 1}", workers=["w2"]))

    out = center.leave("w1")

    # The restriction names a dead worker, so the first link waits for a worker like it; the
    # reader, processing on w2, is taken back because its input is gone.
    assert out == [("w2", FreeKeys(keys=["reader"]))]
    assert center.state_of("k0") == "no-worker"
    assert all(center.state_of(f"k{i}") == "waiting" for i in range(1, length))

    out = center.join("w1")
    assert out == [("w1", WorkerRegistered(address="w1")), ("w1", center.compute("k0"))]
    for i in range(1, length):
        out = center.finished("w1", f"k{i - 1}")
        assert out == [("alice", in_memory(f"k{i - 1}", ["w1"])),
                       ("w1", center.compute(f"k{i}", who_has={f"k{i - 1}": ["w1"]},
                                             nbytes={f"k{i - 1}": 8}))]


def test_unrestricted_chain_lost_whole_restarts_from_its_first_link(center):
    center.join("w1")
    keys = [f"k{i}" for i in range(8)]
    center.submit("k0", *(center.spec(keys[i], keys[i - 1]) for i in range(1, 8)))
    for key in keys:
        center.finished("w1", key)
    center.join("w2")

    out = center.leave("w1")

    assert out == [("w2", center.compute("k0"))]
    assert all(center.state_of(key) == "waiting" for key in keys[1:])


def test_a_dependent_reading_from_a_dead_worker_waits_for_the_recomputed_input(center):
    center.join("w1")
    center.join("w2")
    center.submit(center.spec("a", workers=["w1"]), center.spec("b", "a", workers=["w2"]))
    center.finished("w1", "a")
    assert center.processing_on("b") == "w2"

    out = center.leave("w1")

    assert out == [("w2", FreeKeys(keys=["b"]))]
    assert center.state_of("a") == "no-worker" and center.state_of("b") == "waiting"


# -- scattered data has no lineage ------------------------------------------------------------

def scatter(center, key, worker, nbytes=5):
    center.scatter_plan({key: nbytes}, workers=[worker])
    center.keys_added(worker, {key: nbytes})


def test_lost_scattered_data_and_its_dependents_are_reported_lost(center):
    center.join("w1")
    center.join("w2")
    scatter(center, "x", "w1")
    center.submit(center.spec("y", "x", workers=["w2"]), center.spec("z", "y"))

    out = center.leave("w1", reason="killed")

    why = "data for x was lost: its only copy was on worker w1, which left (killed)"
    assert out == [("w2", FreeKeys(keys=["y"])),
                   ("alice", KeyLost(key="x", message=why)),
                   ("alice", KeyLost(key="y", message=f"its input x was lost: {why}")),
                   ("alice", KeyLost(key="z", message=f"its input x was lost: {why}"))]
    assert [center.state_of(k) for k in "xyz"] == ["lost"] * 3

    center.release("x", "y", "z")
    assert center.state.tasks == {}


def test_broadcast_scattered_data_survives_a_worker(center):
    center.join("w1")
    center.join("w2")
    center.scatter_plan({"x": 5}, broadcast=True)
    center.keys_added("w1", {"x": 5})
    center.keys_added("w2", {"x": 5})

    assert center.leave("w1") == []
    assert center.who_has("x") == {"w2"}


def test_a_task_built_on_lost_data_is_lost_at_once(center):
    center.join("w1")
    scatter(center, "x", "w1")
    center.leave("w1")
    center.join("w2")

    out = center.submit(center.spec("y", "x"))

    why = "data for x was lost: its only copy was on worker w1, which left (connection closed)"
    assert out == [("alice", KeyLost(key="y", message=f"its input x was lost: {why}"))]
    assert center.state_of("y") == "lost"


def test_a_result_whose_scattered_input_is_gone_cannot_be_recomputed(center):
    center.join("w1")
    center.join("w2")
    scatter(center, "x", "w1")
    center.submit(center.spec("y", "x", workers=["w2"]))
    center.finished("w2", "y")
    center.leave("w1")
    assert center.state_of("y") == "memory"  # its value outlives its input

    out = center.leave("w2")

    why = "data for x was lost: its only copy was on worker w1, which left (connection closed)"
    assert out == [("alice", KeyLost(key="y", message=f"its input x was lost: {why}"))]
    assert center.state_of("y") == "lost"


def test_scattering_again_under_a_lost_key_revives_it(center):
    center.join("w1")
    scatter(center, "x", "w1")
    center.leave("w1")
    center.join("w2")

    center.scatter_plan({"x": 5})
    assert center.state_of("x") == "scattering"
    assert center.keys_added("w2", {"x": 5}) == [("alice", in_memory("x", ["w2"], 5, ""))]


# -- a peer did not have the data ---------------------------------------------------------------

def test_missing_data_from_one_holder_resends_the_task_with_the_others(center):
    for address in ("w1", "w2", "w3"):
        center.join(address)
    center.submit(center.spec("a", workers=["w1"]))
    center.finished("w1", "a")
    center.keys_added("w2", {"a": 8})
    center.submit(center.spec("b", "a", workers=["w3"]))

    out = center.missing("w3", "a", holder="w1")

    assert out == [("w1", FreeKeys(keys=["a"])),
                   ("w3", center.compute("b", who_has={"a": ["w2"]}, nbytes={"a": 8}))]
    assert center.who_has("a") == {"w2"}
    assert "a" not in center.state.workers["w1"].has_what


def test_missing_data_from_the_last_holder_recomputes_it(center):
    center.join("w1")
    center.join("w2")
    center.submit(center.spec("a", workers=["w1"]))
    center.finished("w1", "a")
    center.submit(center.spec("b", "a", workers=["w2"]))

    out = center.missing("w2", "a", holder="w1")

    assert out == [("w1", FreeKeys(keys=["a"])), ("w2", FreeKeys(keys=["b"])),
                   ("w1", center.compute("a"))]
    assert center.finished("w1", "a") == [
        ("alice", in_memory("a", ["w1"])),
        ("w2", center.compute("b", who_has={"a": ["w1"]}, nbytes={"a": 8}))]


def test_missing_scattered_data_is_lost(center):
    center.join("w1")
    center.join("w2")
    scatter(center, "x", "w1")
    center.submit(center.spec("y", "x", workers=["w2"]))

    out = center.missing("w2", "x", holder="w1")

    why = "data for x was lost: worker w1 no longer had it"
    assert out == [("w1", FreeKeys(keys=["x"])), ("w2", FreeKeys(keys=["y"])),
                   ("alice", KeyLost(key="x", message=why)),
                   ("alice", KeyLost(key="y", message=f"its input x was lost: {why}"))]


def test_a_worker_reporting_it_lacks_a_key_it_was_counted_for(center):
    center.join("w1")
    center.join("w2")
    center.submit(center.spec("a", workers=["w1"]))
    center.finished("w1", "a")
    center.keys_added("w2", {"a": 8})
    center.submit(center.spec("b", "a", workers=["w2"]))  # w2 is thought to hold a already

    out = center.missing("w2", "a", holder="w2")

    assert out == [("w2", FreeKeys(keys=["a"])),
                   ("w2", center.compute("b", who_has={"a": ["w1"]}, nbytes={"a": 8}))]


def test_missing_data_about_a_forgotten_key_is_ignored(center):
    center.join("w1")
    assert center.missing("w1", "gone", holder="w2") == []


# -- stale reports -----------------------------------------------------------------------------

def test_a_late_result_from_a_worker_the_task_was_taken_from_is_freed(center):
    center.join("w1")
    center.join("w2")
    center.submit("a", center.spec("b", "a", workers=["w1"]))
    center.leave("w1")  # presumed dead, but it was only slow
    assert center.processing_on("a") == "w2"
    center.join("w1")

    # Whether w1 still holds a cannot be known here: it is told to free it.
    assert center.finished("w1", "a") == [("w1", FreeKeys(keys=["a"]))]
    assert center.processing_on("a") == "w2"

    assert center.finished("w2", "a") == [
        ("alice", in_memory("a", ["w2"])),
        ("w1", center.compute("b", who_has={"a": ["w2"]}, nbytes={"a": 8}))]
    assert center.state.finished_by_prefix["a"] == 1

    # Too late for a replica either.
    assert center.finished("w1", "a") == [("w1", FreeKeys(keys=["a"]))]
    assert center.who_has("a") == {"w2"}


def test_a_result_crossing_the_free_keys_that_took_its_task_back_is_not_recorded(center):
    """b finishes on w2 just as the center, having lost b's input, tells w2 to drop b: by
    the time the report arrives, w2 may no longer hold b."""
    center.join("w1")
    center.join("w2")
    center.submit(center.spec("a", workers=["w1"]), center.spec("b", "a", workers=["w2"]))
    center.finished("w1", "a")
    assert center.leave("w1") == [("w2", FreeKeys(keys=["b"]))]

    assert center.finished("w2", "b") == [("w2", FreeKeys(keys=["b"]))]
    assert center.state_of("b") == "waiting" and center.state_of("a") == "no-worker"


def test_the_same_result_reported_twice_counts_once(center):
    center.join("w1")
    center.submit("a")
    center.finished("w1", "a")

    assert center.finished("w1", "a") == []
    assert center.state.finished_by_prefix["a"] == 1
    assert center.who_has("a") == {"w1"}


def test_a_result_for_a_forgotten_task_is_freed(center):
    center.join("w1")
    center.submit("a")
    center.cancel("a")

    assert center.finished("w1", "a") == [("w1", FreeKeys(keys=["a"]))]
    assert center.state.tasks == {}
    assert center.state.workers["w1"].has_what == set()


def test_a_result_for_an_erred_task_is_freed(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    center.erred("w1", "a")

    assert center.finished("w2", "a") == [("w2", FreeKeys(keys=["a"]))]
    assert center.state_of("a") == "erred"
    assert center.state.workers["w2"].has_what == set()


def test_an_error_from_a_worker_no_longer_running_the_task_is_ignored(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    center.leave("w1")
    center.join("w1")
    assert center.processing_on("a") == "w2"

    assert center.erred("w1", "a") == []
    assert center.processing_on("a") == "w2"


def test_messages_from_a_worker_that_left_are_ignored(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    center.leave("w1")

    assert center.worker_sent("w1", TaskFinished(key="a", nbytes=8)) == []
    assert center.processing_on("a") == "w2"


# -- a worker registers again ---------------------------------------------------------------

def test_a_returning_worker_keeps_wanted_keys_as_replicas_and_frees_the_rest(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    center.finished("w1", "a")

    out = center.join("w3", keys={"a": 8, "junk": 3})

    assert out == [("w3", WorkerRegistered(address="w3")), ("w3", FreeKeys(keys=["junk"]))]
    assert center.who_has("a") == {"w1", "w3"}
    assert center.state.workers["w3"].nbytes == 8


def test_a_returning_worker_with_a_key_being_recomputed_ends_the_recomputation(center):
    center.join("w1")
    center.join("w2")
    center.submit("a", center.spec("b", "a", workers=["w2"]))
    center.finished("w1", "a")
    center.finish("b")
    center.leave("w1")
    assert center.processing_on("a") == "w2"

    out = center.join("w1", keys={"a": 8})

    assert out == [("w1", WorkerRegistered(address="w1")), ("w2", FreeKeys(keys=["a"])),
                   ("alice", in_memory("a", ["w1"]))]
    assert center.who_has("a") == {"w1"}


def test_registering_again_under_the_same_address_replaces_the_old_worker(center):
    center.join("w1")
    center.submit("a", "b")
    center.finished("w1", "b")

    out = center.join("w1", nthreads=2, keys={"b": 8})

    assert out == [("w1", WorkerRegistered(address="w1")), ("w1", center.compute("a"))]
    assert center.who_has("b") == {"w1"}
    assert center.state.workers["w1"].nthreads == 2
    assert center.task("a").died_on == ()


def test_registering_again_with_scattered_data_keeps_it(center):
    center.join("w1")
    scatter(center, "x", "w1")

    assert center.join("w1", keys={"x": 5}) == [("w1", WorkerRegistered(address="w1"))]
    assert center.who_has("x") == {"w1"}


def test_registering_again_without_scattered_data_loses_it(center):
    center.join("w1")
    scatter(center, "x", "w1")

    out = center.join("w1")

    why = "data for x was lost: its only copy was on worker w1, which left (registered again)"
    assert out == [("alice", KeyLost(key="x", message=why)),
                   ("w1", WorkerRegistered(address="w1"))]


# -- heartbeats ---------------------------------------------------------------------------------

def test_heartbeats_record_metrics_and_pause_and_resume_a_worker(center):
    center.join("w1")
    center.submit("a", "b", "c")

    assert center.heartbeat("w1", paused=True, memory=900) == []
    assert center.state.workers["w1"].metrics == {"paused": True, "memory": 900}
    assert center.state.workers["w1"].status == "paused"
    assert center.finished("w1", "a") == [("alice", in_memory("a", ["w1"]))]  # no new work
    assert center.state_of("c") == "queued"

    assert center.heartbeat("w1", paused=False, memory=100) == [("w1", center.compute("c"))]


def test_a_paused_worker_that_dies_takes_its_work_elsewhere(center):
    center.join("w1")
    center.submit("a")
    center.heartbeat("w1", paused=True)
    center.join("w2")

    assert center.leave("w1") == [("w2", center.compute("a"))]


# -- long lineage -------------------------------------------------------------------------------

def test_a_long_chain_is_computed_recovered_and_forgotten_without_deep_recursion(center):
    """A cumulative computation of thousands of steps: each step has only the previous one as
    input. Walking its lineage must not depend on Python's recursion limit."""
    length = 5_000
    center.join("w1")
    center.join("w2")
    keys = [f"step-{i}" for i in range(length)]
    chain = [center.spec(keys[0])] + [center.spec(keys[i], keys[i - 1]) for i in range(1, length)]

    assert center.submit(*chain, wanted=[keys[-1]]) == [("w1", center.compute(keys[0]))]
    for key in keys:  # validated once at the end: a full check per step would be quadratic
        center.state.handle(WorkerSent(center.processing_on(key),
                                       TaskFinished(key=key, nbytes=8, type="int")))
    center.state.validate()
    [holder] = center.who_has(keys[-1])
    assert sum(ts.state == "released" for ts in center.state.tasks.values()) == length - 1

    other = "w2" if holder == "w1" else "w1"
    assert center.leave(holder) == [(other, center.compute(keys[0]))]

    center.release(keys[-1])
    assert center.state.tasks == {}



# -- graphs no well-behaved client sends -------------------------------------------------------

@pytest.mark.parametrize("graph", [
    {"a": ["a"]},
    {"a": ["b"], "b": ["a"]},
    {"a": ["b"], "b": ["c"], "c": ["a"], "after": ["c"]},
    {"a": ["a", "unknown"]},
    {"a": ["b"], "b": ["a", "unknown"]},
    {"a": ["b", "unknown"], "b": ["a"]},
])
def test_a_graph_with_a_cycle_errs_and_the_center_goes_on(center, match, graph):
    center.join("w1")
    out = center.submit(*(center.spec(key, *deps) for key, deps in graph.items()))

    erred = {message.key for _, message in out if isinstance(message, TaskErred)}
    assert erred == set(graph)
    assert all(center.state_of(key) == "erred" for key in graph)
    assert center.submit("next") == [("w1", center.compute("next"))]


def test_a_task_listing_the_same_input_twice_is_no_cycle(center):
    center.join("w1")
    center.submit("a", center.spec("b", "a", "a"))
    assert center.finished("w1", "a")[-1] == ("w1", center.compute("b", {"a": ["w1"]}, {"a": 8}))
