"""WorkerState: runs of a map's tasks on the event loop (``RunInline``) told back as one event
(``InlineRunEnded``) leave the state, the stories and the messages as one event a task does."""
from dist_protocol.messages import ComputeTask, TaskErred
from dist_worker.events import (ComputeRequested, Execute, ExecutionFailed, ExecutionSucceeded,
                                FreeRequested, InlineRunEnded, MemoryPressureChanged, RunInline,
                                SendToCenter, StealRequested)
from dist_worker.state import WorkerState

FUNCTION = "operator:add"
KEYS = [f"inc-{i}" for i in range(6)]


def outcome(key: str):
    if key == "inc-3":  # one of them fails, as a map's task may
        return ExecutionFailed(key, TaskErred(key=key, exception_type="ValueError",
                                              message="bad input"))
    return ExecutionSucceeded(key, len(key), 28, "int", 10.0, 10.5)


def started(make_worker):
    worker = make_worker(nthreads=1)
    out = worker(*(ComputeRequested(worker.compute_task(key)) for key in KEYS))
    assert out == [worker.execute(KEYS[0])]
    return worker


def what_it_left(state: WorkerState) -> tuple:
    """The state as a transcript compares it: values, tasks, each key's story without its
    stimulus ids (one a run, not one a task; the log interleaves the keys of a run
    otherwise), and the counters a heartbeat reads."""
    return (state.data, state.nbytes, {key: ts.state for key, ts in state.tasks.items()},
            {key: [(start, finish) for _, start, finish, _, _ in state.story(key)]
             for key in KEYS},
            state.executing, state.lent, len(state.ready))


def test_a_run_and_one_event_a_task_leave_the_same_state(make_worker):
    alone, batched = started(make_worker), started(make_worker)
    sent_alone = []
    for key in KEYS:
        out = alone(outcome(key))
        sent_alone += [ins.message for ins in out if type(ins) is SendToCenter]
        assert [ins.key for ins in out if type(ins) is Execute] == KEYS[KEYS.index(key) + 1:][:1]

    # The first task ran on the loop: the state lends the rest as a run, beyond the one
    # thread's slot, and hears of them in one event.
    out = batched(InlineRunEnded([outcome(KEYS[0])], [], FUNCTION, 100))
    sent = [ins.message for ins in out if type(ins) is SendToCenter]
    [run] = [ins for ins in out if type(ins) is RunInline]
    assert [ins.key for ins in run.executes] == KEYS[1:]
    assert run.executes[0] == batched.execute(KEYS[1])
    assert batched.state.lent == set(KEYS[1:]) == batched.state.executing
    out = batched(InlineRunEnded([outcome(key) for key in KEYS[1:]], [], FUNCTION, 100))
    sent += [ins.message for ins in out if type(ins) is SendToCenter]
    assert out[-1:] != [RunInline([])]  # nothing left to lend: no run

    assert sent == sent_alone
    assert what_it_left(batched.state) == what_it_left(alone.state)
    assert batched.state.data == {key: 5 for key in KEYS if key != "inc-3"}


def test_a_run_is_as_long_as_asked_and_stops_at_another_function(make_worker):
    worker = make_worker(nthreads=1)
    other = ComputeTask(key="other", function="operator:mul")
    worker(*(ComputeRequested(worker.compute_task(key)) for key in KEYS[:4]),
           ComputeRequested(other), ComputeRequested(worker.compute_task(KEYS[4])))
    out = worker(InlineRunEnded([outcome(KEYS[0])], [], FUNCTION, 2))
    assert [ins.key for ins in out[-1].executes] == KEYS[1:3]
    out = worker(InlineRunEnded([outcome(key) for key in KEYS[1:3]], [], FUNCTION, 100))
    assert [ins.key for ins in out[-1].executes] == [KEYS[3]]  # "other" is next in line
    out = worker(InlineRunEnded([outcome(KEYS[3])], [], FUNCTION, 100))
    assert out[-1] == Execute(key="other", function="operator:mul", args=None, inputs={})


def test_tasks_of_a_run_given_back_unrun_are_ready_again_for_the_threads(make_worker):
    worker = started(make_worker)
    worker(InlineRunEnded([outcome(KEYS[0])], [], FUNCTION, 100))
    # The loop ran one more, then no longer takes the function (its run was slow).
    out = worker(InlineRunEnded([outcome(KEYS[1])], KEYS[2:], None, 0))
    assert [ins for ins in out if type(ins) is Execute] == [worker.execute(KEYS[2])]
    assert worker.state.lent == set() and worker.state.executing == {KEYS[2]}
    assert [worker.state_of(key) for key in KEYS[2:]] == ["executing", "ready", "ready",
                                                          "ready"]
    story = [(start, finish) for _, start, finish, _, _ in worker.state.story(KEYS[3])]
    assert story == [("released", "ready"), ("ready", "executing"), ("executing", "ready")]


def test_a_run_s_tasks_are_neither_freed_nor_stolen_while_lent(make_worker):
    worker = started(make_worker)
    worker(InlineRunEnded([outcome(KEYS[0])], [], FUNCTION, 100))
    worker(FreeRequested([KEYS[1]]))
    out = worker(StealRequested([KEYS[2]]))
    assert out[-1].message.kept == [KEYS[2]]
    assert worker.state_of(KEYS[1]) == worker.state_of(KEYS[2]) == "executing"


def test_no_run_is_lent_while_paused_or_when_none_is_asked_for(make_worker):
    worker = started(make_worker)
    worker(MemoryPressureChanged(True))
    out = worker(InlineRunEnded([outcome(KEYS[0])], [], FUNCTION, 100))
    assert not [ins for ins in out if type(ins) in (RunInline, Execute)]
    out = worker(MemoryPressureChanged(False))  # a thread's slot is free again
    assert [ins for ins in out if type(ins) is Execute] == [worker.execute(KEYS[1])]
    out = worker(InlineRunEnded([outcome(KEYS[1])], [], FUNCTION, 0))
    assert [ins for ins in out if type(ins) is Execute] == [worker.execute(KEYS[2])]


def test_tasks_with_inputs_are_never_lent(make_worker):
    worker = make_worker(nthreads=1)
    worker(ComputeRequested(worker.compute_task("a")))
    worker.put({"x": 1})
    worker(ComputeRequested(worker.compute_task("b", who_has={"x": ["tcp://me:1"]})))
    out = worker(InlineRunEnded([outcome("a")], [], FUNCTION, 100))
    assert [ins for ins in out if type(ins) is not SendToCenter] == [worker.execute("b", x=1)]


def test_a_row_of_compute_tasks_in_one_event_leaves_what_one_event_each_does(make_worker):
    from dist_worker.events import ComputesRequested

    alone, row = make_worker(nthreads=1), make_worker(nthreads=1)
    messages = [alone.compute_task(key, priority=i % 3) for i, key in enumerate(KEYS)]
    alone.put({"held": 1})
    row.put({"held": 1})
    held = ComputeTask(key="held", function=FUNCTION)  # held already: finished at once
    out_alone = alone(*(ComputeRequested(m) for m in [*messages, held]))
    out_row = row(ComputesRequested([*messages, held]))
    assert out_row == out_alone
    assert what_it_left(row.state) == what_it_left(alone.state)
    assert [ts.priority for ts in row.state.ready] == [ts.priority for ts in alone.state.ready]
    stimuli = {stimulus for key, _, _, stimulus, _ in row.state.log if key in KEYS}
    assert len(stimuli) == 1  # one stimulus for the row
