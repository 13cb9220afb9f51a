"""WorkerState: getting a task's inputs from the peers that hold them."""
from dist_protocol.messages import KeysAdded, MissingData, TaskErred, TaskFinished, Transfer
from dist_worker.events import (DataFetched, ExecutionFailed, Fetch, InputsUnloadable,
                                SendToCenter)
from dist_worker.fetch_plan import MAX_KEYS_PER_FETCH

P1, P2, P3 = "tcp://peer:1", "tcp://peer:2", "tcp://peer:3"


def added(*keys):
    return SendToCenter(KeysAdded(keys=dict.fromkeys(keys, 8)))


def test_inputs_are_fetched_with_one_request_per_peer(worker):
    out = worker.compute("c", who_has={"a": [P1], "b": [P1], "d": [P2]})

    assert out == [Fetch(P1, ["a", "b"]), Fetch(P2, ["d"])]
    assert worker.state.fetches.in_flight == {"a": P1, "b": P1, "d": P2}

    assert worker.fetched(P1, {"a": 1, "b": 2}) == [added("a", "b")]
    assert worker.state_of("c") == "waiting"
    assert worker.fetched(P2, {"d": 3}) == [added("d"), worker.execute("c", a=1, b=2, d=3)]


def test_a_busy_peer_gets_its_next_request_when_it_answers(worker):
    from dist_worker.fetch_plan import REQUESTS_PER_PEER

    assert REQUESTS_PER_PEER == 2
    assert worker.compute("c", who_has={"a": [P1]}) == [Fetch(P1, ["a"])]
    assert worker.compute("d", who_has={"b": [P1]}) == [Fetch(P1, ["b"])]
    assert worker.compute("e", who_has={"f": [P1]}) == []  # two asked already

    out = worker.fetched(P1, {"a": 1})

    assert out == [added("a"), Fetch(P1, ["f"]), worker.execute("c", a=1)]


def test_keys_held_by_several_peers_are_spread_over_idle_ones(worker):
    assert worker.compute("c", who_has={"a": [P1, P2], "b": [P1, P2]}) == [
        Fetch(P1, ["a"]), Fetch(P2, ["b"])]
    assert worker.compute("d", who_has={"e": [P1, P3]}) == [Fetch(P3, ["e"])]


def test_an_input_two_tasks_wait_for_is_fetched_once(worker):
    assert worker.compute("c", who_has={"a": [P1]}) == [Fetch(P1, ["a"])]
    assert worker.compute("d", who_has={"a": [P1]}) == []

    assert worker.fetched(P1, {"a": 7}) == [added("a"), worker.execute("c", a=7),
                                            worker.execute("d", a=7)]


def test_a_failed_fetch_tries_another_holder_then_reports_missing_data(worker):
    assert worker.compute("c", who_has={"a": [P1, P2]}) == [Fetch(P1, ["a"])]

    assert worker.fetch_failed(P1, "a") == [Fetch(P2, ["a"])]
    assert worker.fetch_failed(P2, "a") == [SendToCenter(MissingData(key="a", worker=P2))]
    assert worker.state_of("c") == "waiting"
    assert worker.state.fetches.in_flight == {}

    # The center answers with where the data is now; every holder deserves a fresh try.
    assert worker.compute("c", who_has={"a": [P2, P3]}) == [Fetch(P2, ["a"])]
    assert worker.fetched(P2, {"a": 1}) == [added("a"), worker.execute("c", a=1)]


def test_a_peer_that_lacks_a_key_counts_as_a_failed_fetch(worker):
    worker.compute("c", who_has={"a": [P1, P2], "b": [P1]})

    out = worker.fetched(P1, {"b": 2}, missing=["a"])

    assert out == [added("b"), Fetch(P2, ["a"])]
    assert worker.fetched(P2, {"a": 1}) == [added("a"), worker.execute("c", a=1, b=2)]


def test_a_failed_peer_does_not_hold_up_fetches_from_others(worker):
    worker.compute("c", who_has={"a": [P1]})
    worker.compute("d", who_has={"b": [P2]})

    assert worker.fetch_failed(P1, "a", reason="timeout") == [
        SendToCenter(MissingData(key="a", worker=P1))]
    assert worker.fetched(P2, {"b": 2}) == [added("b"), worker.execute("d", b=2)]


def test_an_input_freed_while_in_flight_is_not_kept(worker):
    worker.compute("c", who_has={"a": [P1]})
    assert worker.free("c") == []

    assert worker.fetched(P1, {"a": 1}) == []
    assert worker.state.data == {} and worker.state.fetches.in_flight == {}
    assert not worker.state.fetches.busy_peers


def test_an_input_the_center_thinks_is_here_but_is_not_is_reported(worker):
    out = worker.compute("c", who_has={"a": ["tcp://me:1", P1], "b": ["tcp://me:1"]})

    assert out == [SendToCenter(MissingData(key="a", worker="tcp://me:1")),
                   SendToCenter(MissingData(key="b", worker="tcp://me:1")),
                   Fetch(P1, ["a"])]


def test_replicas_are_fetched_reported_and_kept(worker):
    assert worker.replicas({"x": [P1], "y": [P2]}) == [Fetch(P1, ["x"]), Fetch(P2, ["y"])]
    assert worker.fetched(P1, {"x": 1}) == [added("x")]
    assert worker.state.data == {"x": 1}
    assert worker.replicas({"x": [P1]}) == []  # already here

    assert worker.fetch_failed(P2, "y") == [SendToCenter(MissingData(key="y", worker=P2))]
    assert worker.state.fetches.waiters == {} and worker.state.fetches.who_has == {}


def test_a_big_batch_of_keys_is_cut_into_bounded_requests(worker):
    keys = [f"k{i}" for i in range(2 * MAX_KEYS_PER_FETCH + 5)]

    out = worker.compute("total", who_has={key: [P1] for key in keys})

    assert [len(fetch.keys) for fetch in out] == [MAX_KEYS_PER_FETCH, MAX_KEYS_PER_FETCH, 5]
    assert {fetch.worker for fetch in out} == {P1}


def test_only_inputs_not_held_here_are_fetched(worker):
    worker.put({"a": 1})

    assert worker.compute("c", who_has={"a": ["tcp://me:1"], "b": [P1]}) == [Fetch(P1, ["b"])]
    assert worker.fetched(P1, {"b": 2}) == [added("b"), worker.execute("c", a=1, b=2)]


def test_a_resent_compute_task_does_not_fetch_what_is_already_in_flight(worker):
    assert worker.compute("c", who_has={"a": [P1]}) == [Fetch(P1, ["a"])]

    assert worker.compute("c", who_has={"a": [P1, P2]}) == []
    assert worker.state.fetches.who_has == {"a": [P1, P2]}
    # Should the request in flight fail, the newly named holder is next.
    assert worker.fetch_failed(P1, "a") == [Fetch(P2, ["a"])]


def test_a_resent_compute_task_that_no_longer_names_the_peer_in_flight_fetches_elsewhere(
        worker):
    assert worker.compute("c", who_has={"a": [P1]}) == [Fetch(P1, ["a"])]
    # P1 hangs: the center drops it, makes "a" again on P2, frees "c" here and sends it again.
    assert worker.free("c") == []
    assert worker.compute("c", who_has={"a": [P2]}) == [Fetch(P2, ["a"])]
    assert worker.fetched(P2, {"a": 2}) == [added("a"), worker.execute("c", a=2)]
    # The hung peer answering at last changes nothing.
    assert worker.fetched(P1, {"a": 1}) == []
    assert worker.state.data == {"a": 2} and worker.state.fetches.in_flight == {}
    assert not worker.state.fetches.busy_peers


def test_large_inputs_are_fetched_a_bounded_number_of_bytes_at_a_time(worker):
    from dist_protocol.messages import ComputeTask
    from dist_worker.events import ComputeRequested
    from dist_worker.fetch_plan import MAX_FETCH_BYTES

    size = MAX_FETCH_BYTES // 2 + 1  # two of them are over the bound
    keys = ["a", "b", "c", "d"]
    message = ComputeTask(key="total", function="builtins:sum", who_has={k: [P1] for k in keys},
                          nbytes=dict.fromkeys(keys, size))
    # (two requests to a peer at once)
    assert worker(ComputeRequested(message)) == [Fetch(P1, ["a"]), Fetch(P1, ["b"])]
    assert worker.fetched(P1, {"a": 1}) == [added("a"), Fetch(P1, ["c"])]
    assert worker.fetched(P1, {"b": 2}) == [added("b"), Fetch(P1, ["d"])]


def test_a_shuffles_inputs_come_from_a_peer_a_few_tasks_at_a_time_the_first_tasks_first(worker):
    size = 300_000  # a piece of a shuffle
    pieces = {task: [f"{task}-{i}" for i in range(3)] for task in ("t0", "t1", "t2")}
    requests = [worker(_sized_task(task, dict.fromkeys(keys, [P1]), size))
                for task, keys in pieces.items()]

    # Requests of about a megabyte, two at a time: the first tasks' inputs...
    assert requests == [[Fetch(P1, pieces["t0"])], [Fetch(P1, pieces["t1"])], []]
    out = worker.fetched(P1, dict.fromkeys(pieces["t0"], 1))
    # ...then the next task's, while the first runs.
    assert Fetch(P1, pieces["t2"]) in out
    assert any(getattr(order, "key", None) == "t0" for order in out)


def _sized_task(key, who_has, size):
    from dist_protocol.messages import ComputeTask
    from dist_worker.events import ComputeRequested
    return ComputeRequested(ComputeTask(key=key, function="builtins:sum", who_has=who_has,
                                        nbytes=dict.fromkeys(who_has, size)))


def test_inputs_in_flight_from_all_peers_are_bounded_in_bytes(make_worker):
    worker = make_worker()
    worker.state.fetches.incoming_bytes_limit = 100
    out = worker(_sized_task("total", {"a": [P1], "b": [P2], "c": [P3]}, 40))

    assert out == [Fetch(P1, ["a"]), Fetch(P2, ["b"])]  # a third would make 120 bytes
    assert worker.state.fetches.incoming_bytes == 80
    assert worker.fetched(P1, {"a": 1}) == [added("a"), Fetch(P3, ["c"])]
    assert worker.state.fetches.incoming_bytes == 80
    worker.fetched(P2, {"b": 2})
    worker.fetched(P3, {"c": 3})
    assert worker.state.fetches.incoming_bytes == 0
    assert worker.state_of("total") == "executing"


def test_an_input_larger_than_the_byte_bound_is_fetched_alone(make_worker):
    worker = make_worker()
    worker.state.fetches.incoming_bytes_limit = 100
    assert worker(_sized_task("total", {"a": [P1], "b": [P2]}, 500)) == [Fetch(P1, ["a"])]
    assert worker.fetched(P1, {"a": 1}) == [added("a"), Fetch(P2, ["b"])]


def test_a_failed_or_redirected_fetch_gives_its_bytes_back(make_worker):
    worker = make_worker()
    worker.state.fetches.incoming_bytes_limit = 100
    assert worker(_sized_task("total", {"a": [P1, P2], "b": [P3]}, 60)) == [Fetch(P1, ["a"])]
    assert worker.fetch_failed(P1, "a") == [Fetch(P2, ["a"])]
    assert worker.state.fetches.incoming_bytes == 60
    assert worker.fetched(P2, {"a": 1}) == [added("a"), Fetch(P3, ["b"])]


def test_above_the_memory_target_inputs_come_one_at_a_time(worker):
    from dist_worker.events import MemoryPressureChanged

    assert worker(MemoryPressureChanged(False, above_target=True)) == []
    assert worker.compute("c", who_has={"a": [P1], "b": [P2], "d": [P3]}) == [Fetch(P1, ["a"])]
    assert worker.fetched(P1, {"a": 1}) == [added("a"), Fetch(P2, ["b"])]
    # Below the target again: what is left goes at once.
    assert worker(MemoryPressureChanged(False, above_target=False)) == [Fetch(P3, ["d"])]


def test_a_paused_worker_fetches_one_input_at_a_time_and_runs_nothing(worker):
    worker.pause()
    assert worker.compute("c", who_has={"a": [P1], "b": [P1]}) == [Fetch(P1, ["a"])]
    assert worker.fetched(P1, {"a": 1}) == [added("a"), Fetch(P1, ["b"])]
    assert worker.fetched(P1, {"b": 2}) == [added("b")]
    assert worker.pause(False) == [worker.execute("c", a=1, b=2)]


def test_an_input_that_arrives_and_cannot_be_unpickled_errs_the_tasks_waiting_for_it(worker):
    """The bytes would fail the same from any holder: asking another one, or the center, for
    the key again would go on for ever, and the tasks would wait for ever."""
    worker.compute("c", who_has={"a": [P1, P2], "b": [P1]})
    worker.compute("d", who_has={"a": [P1, P2]})
    worker.compute("e", who_has={"b": [P1]})

    out = worker(DataFetched(P1, {"b": 2}, {"b": 8}, []),
                 InputsUnloadable(P1, {"a": ("ValueError", "cannot deserialize: bad")}))

    because = "could not load its input a, fetched from tcp://peer:1, on this worker: " \
              "cannot deserialize: bad"
    assert out == [added("b"),
                   SendToCenter(TaskErred(key="c", exception_type="ValueError", message=because)),
                   SendToCenter(TaskErred(key="d", exception_type="ValueError", message=because)),
                   worker.execute("e", b=2)]
    assert worker.state_of("c") == worker.state_of("d") == "forgotten"
    assert worker.state.fetches.in_flight == {} and "a" not in worker.state.fetches.waiters
    assert worker.state.data == {"b": 2}
    # A later task is unharmed.
    assert worker.compute("f", who_has={"g": [P2]}) == [Fetch(P2, ["g"])]


def reported(out):
    """The task-finished or task-erred among a step's instructions."""
    (message,) = [i.message for i in out if type(i) is SendToCenter
                  and type(i.message) in (TaskFinished, TaskErred)]
    return message


def test_the_inputs_fetched_for_a_run_are_reported_with_its_outcome(worker):
    worker.compute("c", who_has={"a": [P1], "a2": [P1], "b": [P2]})
    worker.compute("d", who_has={"a": [P1]})
    worker.compute("e", who_has={"b": [P2]})
    # one request for two of c's inputs: one transfer
    worker(DataFetched(P1, {"a": 1, "a2": 1}, {"a": 8, "a2": 8}, [], start=1.0, stop=1.5))
    worker(DataFetched(P2, {"b": 2}, {"b": 8}, [], start=1.2, stop=2.0))

    fetched_a, fetched_b = Transfer(P1, 1.0, 1.5), Transfer(P2, 1.2, 2.0)
    assert reported(worker.succeeded("c")).transfers == [fetched_a, fetched_b]
    assert reported(worker.succeeded("d")).transfers == [fetched_a]
    assert reported(worker(ExecutionFailed("e", TaskErred(
        key="e", exception_type="ValueError", message="bad", start=3.0,
        stop=3.5)))).transfers == [fetched_b]
    # a task whose inputs were all here already fetched nothing
    worker.compute("f", who_has={"a": [P1]})
    assert reported(worker.succeeded("f")).transfers == []
