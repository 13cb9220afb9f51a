"""WorkerState: running tasks on its threads, reporting outcomes, freeing and pausing."""
from dist_protocol.messages import (KeysAdded, MissingData, StealReply, StoryReply, TaskErred,
                                    TaskFinished)
from dist_protocol.serialize import Payload
from dist_worker.events import (ComputeRequested, ExecutionSucceeded, Fetch, ForgottenRunEnded,
                                RestartRequested,
                                MemoryPressureChanged, ReplaceThread, SendToCenter, StealRequested,
                                StoryRequested)
from dist_worker.state import SMALL_VALUE_BYTES


def finished(key, nbytes=8, type="int"):
    return SendToCenter(TaskFinished(key=key, nbytes=nbytes, type=type, start=10.0, stop=10.5))


def test_tasks_without_inputs_run_at_once_up_to_the_thread_count(worker):
    assert worker.compute("a") == [worker.execute("a")]
    assert worker.compute("b") == [worker.execute("b")]
    assert worker.compute("c") == []
    assert worker.state_of("c") == "ready"

    assert worker.succeeded("a", value=3) == [finished("a"), worker.execute("c")]
    assert worker.state.data == {"a": 3}
    assert worker.state.tasks.keys() == {"b", "c"}


def test_ready_tasks_start_in_priority_order(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("first")
    out = worker(ComputeRequested(worker.compute_task("low")),
                 ComputeRequested(worker.compute_task("high", priority=5)),
                 ComputeRequested(worker.compute_task("mid", priority=2)),
                 ComputeRequested(worker.compute_task("high-too", priority=5)))
    assert out == []

    started = []
    for key in ["first", "high", "high-too", "mid"]:
        started += [ins.key for ins in worker.succeeded(key) if ins != finished(key)]
    assert started == ["high", "high-too", "mid", "low"]


def test_a_task_with_inputs_held_here_runs_with_their_values(worker):
    worker.put({"x": 40})
    worker.compute("a")
    worker.succeeded("a", value=2)

    out = worker.compute("total", who_has={"x": ["tcp://me:1"], "a": ["tcp://me:1"]})

    assert out == [worker.execute("total", x=40, a=2)]


def test_success_and_failure_are_reported_to_the_center(worker):
    worker.compute("good")
    worker.compute("bad")

    assert worker.succeeded("good", value=[1, 2], nbytes=99, type="list") == [
        finished("good", 99, "list")]
    assert worker.failed("bad") == [SendToCenter(TaskErred(key="bad",
                                                           exception_type="ValueError",
                                                           message="bad input"))]
    assert worker.state.data == {"good": [1, 2]}
    assert worker.state.nbytes == {"good": 99}
    assert worker.state.tasks == {} and worker.state.executing == set()


def test_a_result_is_handed_to_a_task_here_that_waits_for_it(worker):
    worker.compute("a")
    worker.compute("b", who_has={"a": ["tcp://peer:2"]})  # the center sent b early
    assert worker.state_of("b") == "waiting"

    assert worker.succeeded("a", value=5) == [finished("a"), worker.execute("b", a=5)]


def test_a_duplicate_compute_task_runs_nothing_twice(worker):
    assert worker.compute("a") == [worker.execute("a")]
    assert worker.compute("a") == []  # executing

    worker.compute("b")
    assert worker.compute("c") == []
    assert worker.compute("c") == []  # ready
    assert worker.succeeded("a") == [finished("a"), worker.execute("c")]

    # Already in memory: report it again rather than run it again.
    assert worker.compute("a") == [SendToCenter(TaskFinished(key="a", nbytes=8))]


def test_free_keys_drops_ready_and_waiting_tasks_and_held_data(worker):
    worker.compute("a")
    worker.compute("b")
    worker.compute("ready")
    worker.compute("waiting", who_has={"x": ["tcp://peer:2"]})
    worker.put({"held": 1})

    assert worker.free("ready", "waiting", "held") == []

    assert worker.state.tasks.keys() == {"a", "b"}
    assert worker.state.data == {} and worker.state.nbytes == {}
    assert worker.state.fetches.waiters == {} and worker.state.fetches.who_has == {}
    assert worker.succeeded("a") == [finished("a")]  # the freed ready task never starts


def test_free_keys_of_an_executing_task_lets_the_center_decide_about_its_result(worker):
    """A running thread cannot be stopped: its result is reported, and the center frees it
    or, if it asked for the key again meanwhile, uses it. Its slot is given back meanwhile
    (``test_worker_state_secede``)."""
    worker.compute("a")
    assert worker.free("a") == [ReplaceThread("a")]
    assert worker.state_of("a") == "long-running"
    assert worker.compute("a") == []

    assert worker.succeeded("a") == [finished("a")]


def test_a_steal_request_takes_only_tasks_that_have_not_started(worker):
    worker.compute("running-1")
    worker.compute("running-2")
    worker.compute("ready")
    worker.compute("waiting", who_has={"x": ["tcp://peer:2"]})

    out = worker.steal("running-1", "ready", "waiting", "unknown")

    assert out == [SendToCenter(StealReply(keys=["ready", "waiting"],
                                           kept=["running-1", "unknown"]))]
    assert worker.state.tasks.keys() == {"running-1", "running-2"}
    assert worker.state.fetches.waiters == {} and worker.state.fetches.who_has == {}
    assert worker.succeeded("running-1") == [finished("running-1")]  # nothing else starts
    assert all(ts.key not in worker.state.tasks for ts in worker.state.ready)


def test_a_task_asked_back_after_it_started_or_finished_is_kept(worker):
    """The center asks back a task to cancel it if it has not started (``cancel`` with
    ``pending_only``): one that started while the request was in flight runs to the end,
    and one that finished keeps its value; only one still waiting for a thread is dropped."""
    worker.compute("a")
    worker.compute("b")
    worker.compute("c")
    worker.succeeded("a")  # c starts in a's place

    out = worker.steal("a", "b", "c")

    assert out == [SendToCenter(StealReply(keys=[], kept=["a", "b", "c"]))]
    assert "a" in worker.state.data and worker.state_of("c") == "executing"
    assert worker.succeeded("c") == [finished("c")]


def test_a_task_asked_back_in_the_batch_that_brought_it_starts_if_a_thread_is_free(worker):
    """The center's ``compute-task`` and its ``steal-request`` for the same tasks can arrive
    in one read (a submit and ``shutdown(cancel_futures=True)`` right after it): the tasks a
    thread is free for start and are kept; only the one left waiting is given back."""
    tasks = [ComputeRequested(worker.compute_task(key)) for key in ("a", "b", "c")]

    out = worker(*tasks, StealRequested(["a", "b", "c"]))

    assert out == [worker.execute("a"), worker.execute("b"),
                   SendToCenter(StealReply(keys=["c"], kept=["a", "b"]))]
    assert worker.state_of("a") == worker.state_of("b") == "executing"


def test_a_stolen_task_sent_back_later_runs_here(worker):
    worker.compute("a")
    worker.compute("b")
    worker.compute("c")
    worker.steal("c")

    assert worker.compute("c") == []  # both threads busy: it waits its turn
    assert worker.succeeded("a") == [finished("a"), worker.execute("c")]


def test_a_small_result_travels_with_task_finished_and_a_large_one_does_not(worker):
    small = Payload("pickle", [b"s" * SMALL_VALUE_BYTES])
    large = Payload("pickle", [b"l" * (SMALL_VALUE_BYTES + 1)])
    worker.compute("a")
    worker.compute("b")

    [report_a] = worker(ExecutionSucceeded("a", "value", small.nbytes, "str", 1.0, 2.0, small))
    [report_b] = worker(ExecutionSucceeded("b", "value", large.nbytes, "str", 1.0, 2.0, large))

    assert report_a.message.value is small and report_b.message.value is None
    assert worker.state.serialized == {"a": small, "b": large}  # both kept to serve fetches


def test_free_keys_for_unknown_keys_is_harmless(worker):
    assert worker.free("never-seen") == []


def test_data_put_here_is_reported_and_wakes_tasks_waiting_for_it(worker):
    worker.compute("b", who_has={"x": ["tcp://peer:2"]})

    out = worker.put({"x": 1, "y": 2})

    assert out == [SendToCenter(KeysAdded(keys={"x": 8, "y": 8})), worker.execute("b", x=1)]
    assert worker.state.data == {"x": 1, "y": 2}


def test_a_paused_worker_starts_nothing_new_until_resumed(worker):
    worker.compute("a")
    assert worker.pause() == []
    assert worker.compute("b") == []
    assert worker.compute("c") == []
    assert worker.succeeded("a") == [finished("a")]
    assert worker.state.executing == set()

    assert worker.pause(False) == [worker.execute("b"), worker.execute("c")]


def test_a_ready_task_whose_input_was_freed_fetches_it_again(make_worker):
    """A center that restarted frees every key it does not know, inputs included; a task
    already ready must not start without them."""
    worker = make_worker(nthreads=1)
    worker.compute("busy")
    worker.put({"x": 1})
    worker.compute("b", who_has={"x": ["tcp://me:1", "tcp://peer:2"]})
    assert worker.state_of("b") == "ready"

    assert worker.free("x") == []
    out = worker.succeeded("busy")

    assert out == [finished("busy"),
                   SendToCenter(MissingData(key="x", worker="tcp://me:1")),
                   Fetch("tcp://peer:2", ["x"])]
    assert worker.state_of("b") == "waiting"
    assert worker.fetched("tcp://peer:2", {"x": 1}) == [
        SendToCenter(KeysAdded(keys={"x": 8})), worker.execute("b", x=1)]


def test_reset_forgets_every_task_and_value(worker):
    worker.put({"x": 1})
    worker.compute("a")
    worker.compute("b", who_has={"y": ["tcp://peer:2"]})

    worker(RestartRequested("the cluster restarts"))

    assert worker.state.data == {} and worker.state.tasks == {}
    assert worker.state.fetches.waiters == {} and worker.state.fetches.in_flight == {}
    # The thread that was running a is still busy: one thread is left for new work.
    assert worker.compute("new") == [worker.execute("new")]
    assert worker.compute("later") == []
    # Its outcome, arriving later as a forgotten run's (task_runner), frees the thread.
    assert worker(ForgottenRunEnded("a", held_slot=True)) == [worker.execute("later")]
    assert worker.state.data == {}


def test_the_log_tells_each_key_s_story_with_its_stimulus(worker):
    worker.state.clock = lambda: 77.0
    worker(ComputeRequested(worker.compute_task("b", who_has={"x": ["tcp://peer:2"]}),
                            stimulus_id="compute-b"))
    worker.fetched("tcp://peer:2", {"x": 1})
    worker.succeeded("b")

    story = worker.state.story("b", "x")
    assert [(key, start, finish) for key, start, finish, _, _ in story] == [
        ("b", "released", "waiting"), ("x", "fetch", "flight"), ("x", "flight", "memory"),
        ("b", "waiting", "ready"), ("b", "ready", "executing"),
        ("b", "executing", "memory")]
    assert story[0][3:] == ("compute-b", 77.0)
    assert story[2][3].startswith("data-fetched-") and story[-1][3].startswith("task-succeeded-")

    out = worker(StoryRequested(9, ["x"]))
    assert out == [SendToCenter(StoryReply(id=9, entries=[
        {"key": "x", "start": start, "finish": finish, "stimulus_id": sid, "time": 77.0,
         "worker": "tcp://me:1"} for key, start, finish, sid, _ in story if key == "x"]))]


def test_memory_pressure_pauses_and_resumes_as_an_event(worker):
    assert worker(MemoryPressureChanged(True)) == []
    assert worker.compute("a") == []
    assert worker(MemoryPressureChanged(False)) == [worker.execute("a")]


def test_task_finished_takes_its_fields_in_the_order_the_state_passes_them():
    # ``_succeeded`` builds it positionally (once per task): a field moved or put in between
    # would send a value under another field's name (one added at the end, with a default,
    # changes nothing here).
    from dataclasses import fields

    from dist_protocol.messages import TaskFinished

    assert [f.name for f in fields(TaskFinished)][:8] == [
        "key", "nbytes", "type", "start", "stop", "value", "value_msgpack", "transfers"]


class SpilledData(dict):
    """A store whose spilled values fail to come back as ``failures`` says."""

    def __init__(self, failures):
        super().__init__()
        self.failures = failures

    def __getitem__(self, key):
        if key in self.failures:
            raise self.failures[key]
        return super().__getitem__(key)


def test_an_input_whose_spill_file_is_gone_is_reported_lost_and_waited_for(worker):
    from dist_worker.spill import SpillReadError
    worker.put({"x": 1, "y": 2})
    worker.state.data = SpilledData({"x": SpillReadError("x", FileNotFoundError(2, "gone"))})
    worker.state.data.update(x=1, y=2)
    out = worker.compute("total", who_has={"x": ["tcp://me:1", "tcp://peer:2"],
                                           "y": ["tcp://me:1"]})
    assert SendToCenter(MissingData(key="x", worker="tcp://me:1")) in out
    assert Fetch("tcp://peer:2", ["x"]) in out
    assert "x" not in worker.state.data and "x" not in worker.state.nbytes
    assert worker.state_of("total") == "waiting" and not worker.state.executing
    worker.state.validate()


def test_an_input_that_no_longer_unpickles_errs_its_task_and_frees_its_thread(worker):
    from dist_worker.spill import SpillLoadError
    worker.put({"x": 1})
    worker.state.data = SpilledData({"x": SpillLoadError("x", ImportError("no module a"))})
    worker.state.data.update(x=1)
    out = worker.compute("total", who_has={"x": ["tcp://me:1"]})
    [erred] = [ins.message for ins in out if isinstance(ins.message, TaskErred)]
    assert erred.key == "total" and erred.exception_type == "ImportError"
    assert "could not load its input x" in erred.message
    assert "total" not in worker.state.tasks and not worker.state.executing
    assert worker.compute("next") == [worker.execute("next")]
