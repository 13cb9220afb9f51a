"""WorkerState: a task sent ahead of inputs this worker is computing (protocol feature
dispatch-ahead) waits for them here, fetches none of them, and starts when the last finishes."""
from dist_protocol.features import default_features
from dist_protocol.messages import ComputeTask, MissingData, StealReply, TaskFinished
from dist_worker.events import ComputeRequested, Fetch, SendToCenter

FUNCTION = "operator:add"


def ahead(key: str, *inputs: str, who_has: dict[str, list[str]] | None = None,
          held: dict[str, list[str]] | None = None) -> ComputeRequested:
    """A compute-task sent before ``inputs`` (computed here) finished; ``held`` are inputs
    held already, with their holders."""
    who_has = {**dict.fromkeys(inputs, []), **(held or {}), **(who_has or {})}
    return ComputeRequested(ComputeTask(key=key, function=FUNCTION, who_has=who_has,
                                        nbytes={k: 8 for k in held or {}},
                                        ahead=list(inputs)))


def finished(key, nbytes=8, type="int"):
    return SendToCenter(TaskFinished(key=key, nbytes=nbytes, type=type, start=10.0, stop=10.5))


def test_workers_announce_the_feature():
    assert "dispatch-ahead" in default_features({})


def test_a_task_sent_ahead_waits_and_starts_when_its_input_finishes_here(make_worker):
    worker = make_worker(nthreads=1)
    assert worker.compute("a") == [worker.execute("a")]
    assert worker(ahead("b", "a")) == []
    assert worker.state_of("b") == "waiting"

    # Started in the same step that reports a: no word from the center is waited for.
    assert worker.succeeded("a", value=41) == [finished("a"), worker.execute("b", a=41)]


def test_an_input_named_ahead_is_never_fetched_whatever_who_has_says(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    out = worker(ahead("b", "a", who_has={"a": ["tcp://me:1", "tcp://peer:2"]}))
    assert not [i for i in out if isinstance(i, Fetch)]
    assert not [i for i in out if isinstance(i, SendToCenter)
                and isinstance(i.message, MissingData)]
    assert worker.state_of("b") == "waiting"


def test_held_inputs_are_fetched_while_the_one_computed_here_runs(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    out = worker(ahead("b", "a", held={"x": ["tcp://peer:2"]}))
    assert out == [Fetch("tcp://peer:2", ["x"])]
    worker.fetched("tcp://peer:2", {"x": 1})
    assert worker.succeeded("a", value=2) == [finished("a"), worker.execute("b", a=2, x=1)]


def test_a_failed_input_never_starts_the_waiting_task_and_the_center_frees_it(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    worker(ahead("b", "a"))
    out = worker.failed("a")
    assert [type(i.message).__name__ for i in out] == ["TaskErred"]
    assert worker.state_of("b") == "waiting"
    assert worker.free("b") == []
    assert worker.state.tasks == {} and worker.state.fetches.waiters == {}


def test_an_input_finished_before_the_task_arrived_runs_it_at_once(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    worker.succeeded("a", value=5)
    assert worker(ahead("b", "a")) == [worker.execute("b", a=5)]


def test_a_waiting_task_is_given_up_when_asked(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    worker(ahead("b", "a"))
    assert worker.steal("b") == [SendToCenter(StealReply(keys=["b"], kept=[]))]
    assert worker.succeeded("a") == [finished("a")]


def test_a_paused_worker_holds_the_task_until_it_resumes(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    worker(ahead("b", "a"))
    worker.pause()
    assert worker.succeeded("a", value=3) == [finished("a")]
    assert worker.state_of("b") == "ready"
    assert worker.pause(False) == [worker.execute("b", a=3)]


# A line waiting ahead: each task waits for the one before, itself waiting here.

def line(worker, length: int) -> list[str]:
    """``a-0`` runs; ``a-1`` .. waits each for the one before, as the center sends a chain."""
    keys = [f"a-{i}" for i in range(length)]
    assert worker.compute(keys[0]) == [worker.execute(keys[0])]
    for before, key in zip(keys, keys[1:]):
        assert worker(ahead(key, before)) == []
    return keys


def test_each_link_of_a_line_starts_as_the_one_before_finishes_here(make_worker):
    worker = make_worker(nthreads=1)
    keys = line(worker, 5)
    assert [worker.state_of(k) for k in keys[1:]] == ["waiting"] * 4
    for value, (key, after) in enumerate(zip(keys, keys[1:])):
        assert worker.succeeded(key, value=value) == [finished(key),
                                                      worker.execute(after, **{key: value})]
    assert worker.succeeded(keys[-1]) == [finished(keys[-1])]


def test_an_input_that_fails_starts_nothing_of_the_line_and_freeing_it_leaves_nothing(
        make_worker):
    worker = make_worker(nthreads=1)
    keys = line(worker, 5)
    out = worker.failed(keys[0])
    assert [type(i.message).__name__ for i in out] == ["TaskErred"]
    assert [worker.state_of(k) for k in keys[1:]] == ["waiting"] * 4
    assert worker.free(*reversed(keys[1:])) == []
    assert worker.state.tasks == {} and worker.state.fetches.waiters == {}
    # The worker goes on with other work.
    assert worker.compute("other") == [worker.execute("other")]


def test_a_line_freed_and_sent_again_runs_once_with_the_new_values(make_worker):
    # An input retried: the center frees the line, then sends the input and the line again.
    worker = make_worker(nthreads=1)
    keys = line(worker, 3)
    worker.failed(keys[0])
    worker.free(keys[2], keys[1])
    assert worker.compute(keys[0]) == [worker.execute(keys[0])]
    for before, key in zip(keys, keys[1:]):
        assert worker(ahead(key, before)) == []
    assert worker.succeeded(keys[0], value=10) == [finished(keys[0]),
                                                   worker.execute(keys[1], **{keys[0]: 10})]
    assert worker.succeeded(keys[1], value=11) == [finished(keys[1]),
                                                   worker.execute(keys[2], **{keys[1]: 11})]


def test_a_link_given_up_in_the_middle_keeps_the_rest_from_starting(make_worker):
    worker = make_worker(nthreads=1)
    keys = line(worker, 4)
    assert worker.steal(keys[1]) == [SendToCenter(StealReply(keys=[keys[1]], kept=[]))]
    # keys[0] finishes: keys[1] is gone, and keys[2], waiting for it, does not start.
    assert worker.succeeded(keys[0]) == [finished(keys[0])]
    assert worker.state_of(keys[2]) == "waiting"
    assert worker.free(keys[3], keys[2]) == []
    assert worker.state.tasks == {} and worker.state.fetches.waiters == {}


def test_tasks_waiting_ahead_are_counted_apart_from_those_waiting_for_a_fetch(make_worker):
    worker = make_worker(nthreads=1)
    line(worker, 3)
    worker(ahead("b", "a-0", held={"x": ["tcp://peer:2"]}))  # also waits for a fetch
    worker.compute("c", who_has={"y": ["tcp://peer:2"]})
    assert worker.state.waiting_counts() == (2, 2)
    worker.fetched("tcp://peer:2", {"x": 1, "y": 2})
    assert worker.state.waiting_counts() == (0, 3)
    worker.succeeded("a-0")
    assert worker.state.waiting_counts() == (0, 1)
