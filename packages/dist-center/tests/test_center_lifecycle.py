"""A key's life at the center: results to clients, release and reference counting, errors,
retries, cancellation, scattered data and several clients sharing keys."""
from dist_center.events import (ClientSent, RestartTimedOut, TimeElapsed, WorkerJoined,
                                WorkerSent)
from dist_protocol.serialize import Payload
from dist_protocol.messages import (AcquireReplicas, Cancel, ClusterInfo, ComputeTask, Environment,
                                    FreeKeys, KeyCancelled, RegisterWorker, TaskSpec,
                                    KeyInMemory, Release, Replicate, Restart, RestartReply,
                                    RestartWorker, WorkerRegistered,
                                    ScatterDone,
                                    ScatterPlanReply, Submit, TaskErred, TaskFinished, WhoHas,
                                    WhoHasReply)


def by_recipient(out):
    return sorted(out, key=lambda item: item[0])


def freed_keys(out):
    return sorted((to, key) for to, msg in out if isinstance(msg, FreeKeys) for key in msg.keys)


def in_memory(key, workers, nbytes=8, type="int"):
    return KeyInMemory(key=key, nbytes=nbytes, type=type, workers=workers)


# -- results ---------------------------------------------------------------------------------

def test_a_finished_task_is_reported_to_every_client_that_wants_it(center):
    center.connect("bob")
    center.join("w1")
    assert center.submit("a") == [("w1", center.compute("a"))]
    assert center.submit("a", client="bob") == []  # one task for both

    out = center.finished("w1", "a", nbytes=64, type="list")

    assert by_recipient(out) == [("alice", in_memory("a", ["w1"], 64, "list")),
                                 ("bob", in_memory("a", ["w1"], 64, "list"))]


def test_a_small_value_goes_along_to_clients_that_asked_and_is_not_kept(center):
    center.connect("bob")
    center.join("w1")
    center.client_sent(Submit(tasks=[center.spec("a")], small_values=True))
    center.submit("a", client="bob")
    value = Payload("pickle", [b"\x80\x05K\x07."])

    out = center.worker_sent("w1", TaskFinished(key="a", nbytes=5, type="int", value=value))

    assert by_recipient(out) == [
        ("alice", KeyInMemory(key="a", nbytes=5, type="int", workers=["w1"], value=value)),
        ("bob", in_memory("a", ["w1"], 5))]
    # Asked again, the center has no value to give: the client fetches it from w1.
    assert center.submit("a") == [("alice", in_memory("a", ["w1"], 5))]


def test_a_worker_makes_a_msgpack_copy_only_of_values_a_msgpack_reader_wants(center):
    """The copy costs the worker and the center for every small result: asked for only when a
    client wanting the key named msgpack, and of a worker that announced the feature."""
    center.connect("bob")
    center.join("w1", nthreads=4, features=frozenset({"small-values-msgpack"}))
    out = center.client_sent(Submit(tasks=[center.spec("a")], small_values=True))
    out += center.client_sent(Submit(tasks=[center.spec("b")], small_values=True,
                                     small_values_serializers=["msgpack"]), client="bob")
    out += center.submit("c", "d", client="alice")
    center.submit("c", client="bob")
    center.finished("w1", "c")
    out += center.submit("c", client="bob")  # (in memory: no task sent again)

    sent = {msg.key: msg.value_msgpack for _, msg in out if isinstance(msg, ComputeTask)}

    assert sent == {"a": False, "b": True, "c": False, "d": False}


def test_a_worker_without_the_feature_is_not_asked_for_a_msgpack_copy(center):
    center.join("w1")
    out = center.client_sent(Submit(tasks=[center.spec("a")], small_values=True,
                                    small_values_serializers=["msgpack"]))

    assert [msg.value_msgpack for _, msg in out if isinstance(msg, ComputeTask)] == [False]


def test_the_pickled_class_of_a_value_goes_to_every_client_unread_and_stays_with_the_key(center):
    """The center passes the bytes on as they came (it never unpickles them: these are not
    even a pickle) and keeps them for clients that ask for the key later."""
    center.connect("bob")
    center.join("w1")
    center.submit("a")
    pickled = b"not a pickle, and the center never reads it"

    out = center.worker_sent("w1", TaskFinished(key="a", nbytes=5, type="Fraction",
                                                type_pickled=pickled))

    assert out == [("alice", KeyInMemory(key="a", nbytes=5, type="Fraction", workers=["w1"],
                                         type_pickled=pickled))]
    assert center.submit("a", client="bob") == [
        ("bob", KeyInMemory(key="a", nbytes=5, type="Fraction", workers=["w1"],
                            type_pickled=pickled))]


def test_submitting_a_key_already_in_memory_reports_it_at_once(center):
    center.connect("bob")
    center.join("w1")
    center.submit("a")
    center.finished("w1", "a")

    assert center.submit("a", client="bob") == [("bob", in_memory("a", ["w1"]))]


def test_who_has_answers_for_known_and_unknown_keys(center):
    center.join("w1")
    center.submit("a")
    center.finished("w1", "a")

    out = center.client_sent(WhoHas(id=7, keys=["a", "nope"]))

    assert out == [("alice", WhoHasReply(id=7, who_has={"a": ["w1"], "nope": []}))]


# -- release and reference counting ------------------------------------------------------------

def test_an_unwanted_input_is_freed_once_its_dependent_is_done(center):
    center.join("w1")
    out = center.submit("a", center.spec("b", "a"), wanted=["b"])
    assert out == [("w1", center.compute("a"))]

    assert center.finished("w1", "a") == [
        ("w1", center.compute("b", who_has={"a": ["w1"]}, nbytes={"a": 8}))]

    out = center.finished("w1", "b")
    assert out == [("alice", in_memory("b", ["w1"])), ("w1", FreeKeys(keys=["a"]))]
    assert center.state_of("a") == "released"  # its lineage stays while b is wanted

    assert center.release("b") == [("w1", FreeKeys(keys=["b"]))]
    assert center.state.tasks == {}


def test_a_released_key_stays_while_a_waiting_task_needs_it(center):
    center.join("w1")
    center.join("w2")
    center.submit("a", "c", center.spec("b", "a", "c"))
    center.finished("w1", "a")

    assert center.release("a") == []  # b still waits for c, then reads a
    assert center.state_of("a") == "memory"

    out = center.finished("w2", "c")
    assert out == [("alice", in_memory("c", ["w2"])),
                   ("w1", center.compute("b", who_has={"a": ["w1"], "c": ["w2"]},
                                         nbytes={"a": 8, "c": 8}))]

    assert center.finished("w1", "b") == [("alice", in_memory("b", ["w1"])),
                                          ("w1", FreeKeys(keys=["a"]))]
    assert center.state_of("a") == "released"

    center.release("b", "c")
    assert center.state.tasks == {}


def test_release_of_a_key_in_memory_frees_it_on_every_holder(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    center.finished("w1", "a")
    assert center.keys_added("w2", {"a": 8}) == []  # w2 fetched a copy
    assert center.who_has("a") == {"w1", "w2"}

    out = center.release("a")

    assert by_recipient(out) == [("w1", FreeKeys(keys=["a"])), ("w2", FreeKeys(keys=["a"]))]
    assert center.state.tasks == {}
    assert all(not w.has_what and w.nbytes == 0 for w in center.state.workers.values())


def test_releasing_a_thousand_tasks_leaves_nothing_behind(center):
    center.join("w1", nthreads=4)
    center.join("w2", nthreads=4)
    inputs = [f"x{i}" for i in range(500)]
    outputs = [center.spec(f"y{i}", f"x{i}") for i in range(500)]
    center.submit(*inputs, *outputs)
    assert len(center.state.tasks) == 1000

    while any(w.processing for w in center.state.workers.values()):
        running = [(w.address, key) for w in center.state.workers.values()
                   for key in w.processing]
        center(*(WorkerSent(address, TaskFinished(key=key, nbytes=8, type="int"))
                 for address, key in running))
    assert all(center.state_of(key) == "memory" for key in center.state.tasks)

    out = center.release(*inputs, *(spec.key for spec in outputs))

    assert sorted(to for to, _ in out) == ["w1", "w2"]  # one free-keys message per worker
    assert sorted(key for _, key in freed_keys(out)) == sorted(
        inputs + [spec.key for spec in outputs])
    assert center.state.tasks == {}
    assert center.state.clients == {"alice": set()}
    assert not center.state.queue and center.state.unrunnable == set()
    for worker in center.state.workers.values():
        assert (worker.has_what, worker.processing, worker.nbytes) == (set(), {}, 0)


def test_cancelling_a_thousand_tasks_in_flight_leaves_nothing_behind(center):
    center.join("w1", nthreads=2)
    keys = [f"t{i}" for i in range(1000)]
    center.submit(*keys, center.spec("total", *keys[:10]))
    center.finish("t0")

    out = center.cancel(*keys, "total")

    # t0 is in memory and t1..t3 run on the worker (ceil(2 threads x 1.1 saturation) slots):
    # those are the keys it must drop.
    assert freed_keys(out) == [("w1", f"t{i}") for i in range(4)]
    assert [msg.key for _, msg in out if isinstance(msg, KeyCancelled)] == keys + ["total"]
    assert center.state.tasks == {}
    assert not center.state.queue and center.state.unrunnable == set()
    worker = center.state.workers["w1"]
    assert (worker.has_what, worker.processing, worker.nbytes) == (set(), {}, 0)


# -- errors and retries ------------------------------------------------------------------------

def test_an_error_goes_to_the_client_and_every_dependent_fails_with_it(center):
    center.join("w1")
    center.submit("a", center.spec("b", "a"), center.spec("c", "b"), "other")

    out = center.erred("w1", "a")

    error = TaskErred(key="a", exception_type="ZeroDivisionError", message="division by zero",
                      traceback="tb")
    assert out == [("alice", error),
                   ("alice", TaskErred(key="b", exception_type="ZeroDivisionError",
                                       message="division by zero", traceback="tb")),
                   ("alice", TaskErred(key="c", exception_type="ZeroDivisionError",
                                       message="division by zero", traceback="tb"))]
    assert [center.state_of(k) for k in "abc"] == ["erred"] * 3

    # The cluster goes on.
    assert center.finished("w1", "other") == [("alice", in_memory("other", ["w1"]))]


def test_asking_again_for_an_erred_key_or_building_on_it_reports_the_error(center):
    center.connect("bob")
    center.join("w1")
    center.submit("a")
    center.erred("w1", "a")

    assert center.submit("a", client="bob") == [
        ("bob", TaskErred(key="a", exception_type="ZeroDivisionError",
                          message="division by zero", traceback="tb"))]
    assert center.submit(center.spec("d", "a")) == [
        ("alice", TaskErred(key="d", exception_type="ZeroDivisionError",
                            message="division by zero", traceback="tb"))]

    assert center.release("a", "d") == []
    assert center.release("a", client="bob") == []
    assert center.state.tasks == {}


def test_a_failed_input_releases_the_other_inputs_of_its_dependents(center):
    center.join("w1")
    center.submit("a", "b", center.spec("c", "a", "b"), wanted=["c"])
    center.finished("w1", "a")

    out = center.erred("w1", "b")

    assert out == [("alice", TaskErred(key="c", exception_type="ZeroDivisionError",
                                       message="division by zero", traceback="tb")),
                   ("w1", FreeKeys(keys=["a"]))]
    center.release("c")
    assert center.state.tasks == {}


def test_retries_run_a_failed_task_again_before_reporting_the_error(center):
    center.join("w1")
    center.submit(center.spec("flaky", retries=2))

    assert center.erred("w1", "flaky") == [("w1", center.compute("flaky"))]
    assert center.erred("w1", "flaky") == [("w1", center.compute("flaky"))]
    out = center.erred("w1", "flaky", exception_type="OSError", message="third time")

    assert out == [("alice", TaskErred(key="flaky", exception_type="OSError",
                                       message="third time", traceback="tb"))]


def test_a_retry_that_succeeds_is_a_normal_result(center):
    center.join("w1")
    center.submit(center.spec("flaky", retries=1))
    center.erred("w1", "flaky")

    assert center.finished("w1", "flaky") == [("alice", in_memory("flaky", ["w1"]))]


# -- cancel ------------------------------------------------------------------------------------

def test_cancel_drops_queued_and_running_work(center):
    center.join("w1")
    center.submit("a", "b", "c")

    out = center.cancel("c", "a")

    assert out == [("w1", FreeKeys(keys=["a"])), ("alice", KeyCancelled(key="c")),
                   ("alice", KeyCancelled(key="a"))]
    assert center.state_of("a") == center.state_of("c") == "forgotten"


def test_cancel_pending_only_leaves_running_and_finished_work(center):
    center.join("w1")
    keys = [f"k{i}" for i in range(200)]
    center.submit(*keys)
    center.finish("k0")
    started = {k for k in keys if center.state_of(k) in ("processing", "memory")}
    assert "k0" in started and len(started) < len(keys)

    out = center.client_sent(Cancel(keys=keys, pending_only=True))

    cancelled = [msg.key for who, msg in out if isinstance(msg, KeyCancelled)]
    assert cancelled == [k for k in keys if k not in started]
    assert all(who == "alice" for who, msg in out if isinstance(msg, KeyCancelled))
    assert {k for k in keys if center.state_of(k) != "forgotten"} == started


def test_cancel_releases_inputs_computed_only_for_the_cancelled_key(center):
    center.join("w1")
    center.submit("a", center.spec("b", "a"), wanted=["b"])

    assert center.cancel("b") == [("w1", FreeKeys(keys=["a"])),
                                  ("alice", KeyCancelled(key="b"))]
    assert center.state.tasks == {}


def test_cancel_by_one_client_leaves_the_key_to_another(center):
    center.connect("bob")
    center.join("w1")
    center.submit("a")
    center.submit("a", client="bob")

    assert center.cancel("a") == [("alice", KeyCancelled(key="a"))]
    assert center.processing_on("a") == "w1"
    assert center.finished("w1", "a") == [("bob", in_memory("a", ["w1"]))]


def test_a_forced_cancel_cancels_the_key_and_what_reads_it_for_every_holder(center):
    """dask's cancel(force=True): other clients' holds go too, with the tasks reading the key."""
    center.connect("bob")
    center.connect("carol")
    center.join("w1")
    center.submit("a")
    center.submit("a", center.spec("b", "a"), client="bob")
    center.submit("x", client="carol")

    out = center.client_sent(Cancel(keys=["a"], force=True))

    cancelled = sorted((to, msg.key) for to, msg in out if isinstance(msg, KeyCancelled))
    assert cancelled == [("alice", "a"), ("bob", "a"), ("bob", "b")]
    assert set(center.state.tasks) == {"x"}
    assert center.state.clients["bob"] == set() and center.state.clients["carol"] == {"x"}
    # Its result, should it come, is freed at once.
    assert center.finished("w1", "a")[0] == ("w1", FreeKeys(keys=["a"]))


def test_a_forced_cancel_lets_datasets_go_of_the_key(center):
    from dist_protocol.messages import PublishDataset
    center.join("w1")
    center.submit("a")
    center.finished("w1", "a")
    center.client_sent(PublishDataset(id=1, name="ds", keys=["a"]))
    center.release("a")

    out = center.client_sent(Cancel(keys=["a"], force=True))

    assert ("w1", FreeKeys(keys=["a"])) in out and center.state.tasks == {}


# -- several clients ----------------------------------------------------------------------------

def test_a_shared_key_is_freed_when_the_last_client_releases_it(center):
    center.connect("bob")
    center.join("w1")
    center.submit("a")
    center.submit("a", client="bob")
    center.finished("w1", "a")

    assert center.release("a") == []
    assert center.state_of("a") == "memory"
    assert center.release("a", client="bob") == [("w1", FreeKeys(keys=["a"]))]
    assert center.state.tasks == {}


def test_a_client_that_leaves_releases_its_keys_and_drops_its_running_work(center):
    center.connect("bob")
    center.join("w1")
    center.submit("running", "held-by-both", "queued")
    center.submit("held-by-both", client="bob")
    center.finished("w1", "held-by-both")
    assert center.state_of("queued") == "processing"
    center.submit("also-queued", "still-queued")

    out = center.disconnect("alice")

    assert freed_keys(out) == [("w1", "queued"), ("w1", "running")]
    assert len(out) == 1  # one free-keys message for both
    assert set(center.state.tasks) == {"held-by-both"}
    assert "alice" not in center.state.clients

    # Bob keeps working throughout.
    assert center.submit("next", client="bob") == [("w1", center.compute("next"))]
    assert center.finished("w1", "next") == [("bob", in_memory("next", ["w1"]))]


def test_a_client_leaving_keeps_inputs_another_clients_task_needs(center):
    center.connect("bob")
    center.join("w1")
    center.join("w2")
    center.submit("a", "slow")
    center.finished("w1", "a")
    center.submit(center.spec("b", "a", "slow"), client="bob")

    assert center.disconnect("alice") == []  # a feeds bob's b; slow runs for it too
    assert center.state_of("a") == "memory" and center.state_of("slow") == "processing"

    out = center.finished("w2", "slow")
    assert out == [("w1", center.compute("b", who_has={"a": ["w1"], "slow": ["w2"]},
                                         nbytes={"a": 8, "slow": 8}))]


# -- scattered data ---------------------------------------------------------------------------

def test_scatter_plan_is_round_robin_from_the_workers_holding_least(center):
    for address in ("w1", "w2", "w3"):
        center.join(address)
    center.submit("held")
    center.finished("w1", "held", nbytes=100)

    out = center.scatter_plan({"x": 5, "y": 5, "z": 5, "u": 5})

    assert out == [("alice", ScatterPlanReply(id=1, targets={
        "x": ["w2"], "y": ["w3"], "z": ["w1"], "u": ["w2"]}))]
    assert [center.state_of(k) for k in "xyzu"] == ["scattering"] * 4


def test_a_value_as_large_as_a_workers_memory_limit_goes_only_where_it_fits(center):
    center.join("small", memory_limit=200)
    center.join("large", memory_limit=1000)
    center.join("unlimited")

    out = center.scatter_plan({"a": 500, "b": 500, "c": 5, "d": 5, "e": 200})
    assert out == [("alice", ScatterPlanReply(id=1, targets={
        "a": ["large"], "b": ["unlimited"], "c": ["large"], "d": ["small"],
        "e": ["unlimited"]}))]

    out = center.scatter_plan({"x": 500}, request=2, broadcast=True)
    assert out == [("alice", ScatterPlanReply(id=2, targets={"x": ["large", "unlimited"]}))]


def test_a_value_no_worker_has_room_for_is_planned_anyway_for_the_client_to_refuse(center):
    center.join("w1", memory_limit=200)
    center.join("w2", memory_limit=300)

    out = center.scatter_plan({"huge": 5000, "small": 5})
    assert out == [("alice", ScatterPlanReply(id=1, targets={"huge": ["w1"],
                                                             "small": ["w2"]}))]


def test_scattered_keys_are_in_memory_once_workers_report_them(center):
    center.join("w1")
    center.join("w2")
    center.scatter_plan({"x": 5, "y": 6})
    out = center.submit(center.spec("total", "x", "y"))
    assert out == [] and center.state_of("total") == "waiting"

    assert center.keys_added("w1", {"x": 5}) == [("alice", in_memory("x", ["w1"], 5, ""))]
    out = center.keys_added("w2", {"y": 6})

    assert out == [("alice", in_memory("y", ["w2"], 6, "")),
                   ("w2", center.compute("total", who_has={"x": ["w1"], "y": ["w2"]},
                                         nbytes={"x": 5, "y": 6}))]


def test_scatter_done_from_the_client_puts_the_keys_in_memory_at_once(center):
    center.join("w1")
    center.join("w2")
    center.scatter_plan({"x": 5, "y": 6})

    out = center.client_sent(ScatterDone(who_has={"x": ["w1"], "y": ["w2", "gone"]},
                                         nbytes={"x": 5, "y": 6}))

    assert sorted(out, key=repr) == [("alice", in_memory("x", ["w1"], 5, "")),
                                     ("alice", in_memory("y", ["w2"], 6, ""))]
    assert center.who_has("x") == {"w1"} and center.who_has("y") == {"w2"}
    # The workers' own reports follow and change nothing.
    assert center.keys_added("w1", {"x": 5}) == []
    # A claim about a key the center does not know makes the worker drop it.
    assert center.client_sent(ScatterDone(who_has={"z": ["w1"]})) == [
        ("w1", FreeKeys(keys=["z"]))]


def test_broadcast_scatter_targets_every_worker(center):
    center.join("w1", name="alpha")
    center.join("w2", name="beta")

    out = center.scatter_plan({"x": 5}, broadcast=True)
    assert out == [("alice", ScatterPlanReply(id=1, targets={"x": ["w1", "w2"]}))]

    assert center.keys_added("w2", {"x": 5}) == [("alice", in_memory("x", ["w2"], 5, ""))]
    assert center.keys_added("w1", {"x": 5}) == []
    assert center.who_has("x") == {"w1", "w2"}


def test_scatter_to_named_workers_or_to_none(center):
    assert center.scatter_plan({"x": 5}) == [("alice", ScatterPlanReply(id=1, targets={}))]
    assert center.state.tasks == {}

    center.join("w1", name="alpha")
    center.join("w2", name="beta")
    out = center.scatter_plan({"x": 5, "y": 5}, request=2, workers=["beta"])
    assert out == [("alice", ScatterPlanReply(id=2, targets={"x": ["w2"], "y": ["w2"]}))]


def test_releasing_scattered_data_before_it_arrives_frees_it_on_arrival(center):
    center.join("w1")
    center.scatter_plan({"x": 5})
    assert center.release("x") == []
    assert center.state.tasks == {}

    assert center.keys_added("w1", {"x": 5}) == [("w1", FreeKeys(keys=["x"]))]


def test_keys_added_for_unknown_keys_are_freed(center):
    center.join("w1")
    assert center.keys_added("w1", {"stranger": 3}) == [("w1", FreeKeys(keys=["stranger"]))]
    assert center.state.workers["w1"].has_what == set()


# -- keys that change hands ----------------------------------------------------------------------

def test_tasks_submitted_but_neither_wanted_nor_needed_are_not_kept(center):
    center.join("w1")
    out = center.submit("a", center.spec("b", "a"), "unrelated", wanted=["b"])

    assert out == [("w1", center.compute("a"))]
    assert set(center.state.tasks) == {"a", "b"}


def test_a_key_scattered_then_submitted_as_a_task_keeps_its_dependents(center):
    center.join("w1")
    center.scatter_plan({"x": 5})
    center.keys_added("w1", {"x": 5})
    center.submit(center.spec("y", "x"))
    center.finished("w1", "y")
    assert center.release("x") == [("w1", FreeKeys(keys=["x"]))]
    assert center.state_of("x") == "released"  # lineage of y, though it has none itself

    assert center.submit("x") == [("w1", center.compute("x"))]
    assert set(center.task("x").dependents) == {"y"}


def test_a_computed_key_scattered_over_leaves_its_old_inputs(center):
    center.join("w1")
    center.submit("a", center.spec("b", "a"), center.spec("c", "b"), wanted=["c"])
    for key in "abc":
        center.finish(key)
    assert [center.state_of(k) for k in "abc"] == ["released", "released", "memory"]

    out = center.scatter_plan({"b": 5})

    assert out == [("alice", ScatterPlanReply(id=1, targets={"b": ["w1"]}))]
    assert center.state_of("b") == "scattering" and center.task("b").deps == ()
    assert center.state_of("a") == "forgotten"


def test_a_task_on_a_key_the_center_does_not_know_fails_at_once(center, match):
    center.join("w1")

    out = center.submit(center.spec("b", "never-submitted"))

    assert out == [("alice", match(TaskErred, key="b", exception_type="MissingDependency"))]
    assert "never-submitted" in out[0][1].message


def test_a_task_reading_itself_fails_alone_or_in_a_graph_and_its_neighbours_run(center, match):
    """A client written from the spec may send a cycle: its tasks would wait forever. A task
    submitted alone is checked as one in a graph is."""
    center.join("w1")

    assert center.submit(center.spec("a", "a")) == [
        ("alice", match(TaskErred, key="a", exception_type="CyclicDependency"))]
    out = center.submit(center.spec("x"), center.spec("y", "z"), center.spec("z", "y"))

    assert sorted((to, msg.key, type(msg).__name__) for to, msg in out) == [
        ("alice", "y", "TaskErred"), ("alice", "z", "TaskErred"), ("w1", "x", "ComputeTask")]
    assert center.submit(center.spec("b", "x")) == []  # reads a task that is not a cycle


# -- cluster-wide requests --------------------------------------------------------------------

def test_replicate_copies_a_key_to_the_workers_holding_least(center):
    for address in ("w1", "w2", "w3"):
        center.join(address)
    center.submit(center.spec("a", workers=["w1"]), center.spec("big", workers=["w2"]),
                  "not-yet")
    center.finished("w1", "a")
    center.finished("w2", "big", nbytes=1000)

    out = center.client_sent(Replicate(keys=["a", "not-yet", "unknown"], n=2))

    assert out == [("w3", AcquireReplicas(who_has={"a": ["w1"]}, nbytes={"a": 8}))]
    assert center.keys_added("w3", {"a": 8}) == []
    assert center.who_has("a") == {"w1", "w3"}
    assert center.client_sent(Replicate(keys=["a"], n=2)) == []  # already on two


def test_cluster_info_describes_every_worker(center):
    center.join("w1", nthreads=4, name="alpha")
    center.submit("a")

    [(to, reply)] = center.client_sent(ClusterInfo(id=3))

    assert to == "alice" and reply.id == 3
    assert reply.workers == [{"address": "w1", "name": "alpha", "nthreads": 4,
                              "memory_limit": 0, "status": "running", "cannot_spill": "",
                              "processing": 1,
                              "ahead": 0, "processing_keys": ["a"], "keys": 0, "nbytes": 0,
                              "metrics": {}, "resources": {}, "environment": None,
                              "nanny": None}]


def test_cluster_info_reports_what_each_worker_said_it_runs(center):
    env = Environment(implementation="cpython", python="3.12.1",
                      packages={"dist-worker": "0.1.0", "cloudpickle": "3.1.3"})
    center(WorkerJoined(RegisterWorker(address="w1", nthreads=1), env))

    [(_, reply)] = center.client_sent(ClusterInfo(id=1))

    assert reply.workers[0]["environment"] == {
        "implementation": "cpython", "python": "3.12.1",
        "packages": {"dist-worker": "0.1.0", "cloudpickle": "3.1.3"}}


def test_compute_task_carries_the_pickle_tag_the_client_gave(center):
    center.join("w1")
    out = center.client_sent(Submit(tasks=[TaskSpec(key="f-1", function="math:sqrt",
                                                    pickled_with="cpython-3.12")]))
    assert [m.pickled_with for _, m in out if isinstance(m, ComputeTask)] == ["cpython-3.12"]


def test_restart_cancels_every_clients_keys_and_restarts_every_worker(center, match):
    center.connect("bob")
    center.join("w1")
    center.join("w2")
    center.submit("a", "b")
    center.finished("w1", "a")
    center.submit("c", client="bob")

    out = center.client_sent(Restart(id=1))

    assert sorted(out, key=lambda item: (item[0], getattr(item[1], "key", ""))) == [
        ("alice", KeyCancelled(key="a")), ("alice", KeyCancelled(key="b")),
        ("bob", KeyCancelled(key="c")),
        ("w1", match(RestartWorker)), ("w2", match(RestartWorker))]
    assert center.state.tasks == {} and center.state.workers == {}

    # Workers come back empty; late reports from before the restart are ignored.
    assert center.finished("w2", "b") == []
    center.join("w1")
    assert center.submit("a") == [("w1", center.compute("a"))]


def test_frees_join_one_message_past_compute_tasks_that_do_not_name_them(center):
    """A key freed after a compute-task to the same worker joins the step's free-keys message
    before it when the compute-task names it neither as its task nor as an input: the worker
    frees it a little sooner, and compute-tasks in a row go as one column block (a chain's
    step frees a link's input between each two links it sends)."""
    center.join("w1")
    center.submit("a", "b")
    center.finished("w1", "a")
    center.finished("w1", "b")

    out = center(ClientSent("alice", Release(keys=["a"])),
                 ClientSent("alice", Submit(tasks=[center.spec("c")])),
                 ClientSent("alice", Release(keys=["b"])))

    assert out == [("w1", FreeKeys(keys=["a", "b"])), ("w1", center.compute("c"))]


def test_a_key_a_compute_task_names_is_freed_after_it(center):
    """A key freed after a compute-task that names it, as its task or as an input, goes in a
    message after that compute-task: the worker must not drop it before reading the order."""
    center.join("w1")
    center.submit("a", "b")
    center.finished("w1", "a")
    center.finished("w1", "b")

    out = center(ClientSent("alice", Release(keys=["a"])),
                 ClientSent("alice", Submit(tasks=[center.spec("c", "b")])),
                 ClientSent("alice", Release(keys=["b", "c"])))

    assert out == [("w1", FreeKeys(keys=["a"])),
                   ("w1", center.compute("c", who_has={"b": ["w1"]}, nbytes={"b": 8})),
                   ("w1", FreeKeys(keys=["c", "b"]))]


def test_a_restart_is_answered_when_as_many_workers_are_back(center, match):
    center.connect("bob")
    center.join("w1")
    center.join("w2")
    assert not [msg for _, msg in center.client_sent(Restart(id=3))
                if isinstance(msg, RestartReply)]

    assert center.join("w1") == [("w1", match(WorkerRegistered))]  # one of two: no answer
    assert center.join("w2") == [("w2", match(WorkerRegistered)),
                                 ("alice", RestartReply(id=3, workers=2, expected=2))]
    assert center.join("w3") == [("w3", match(WorkerRegistered))]  # answered once


def test_a_restart_answers_on_its_timeout_with_the_workers_back_so_far(center, match):
    center.join("w1")
    center.join("w2")
    center.client_sent(Restart(id=4, timeout=5))
    center.join("w1")

    # The client tells a timeout from a restart that completed: one worker of two.
    assert center(RestartTimedOut("alice", 4)) == [("alice", RestartReply(id=4, workers=1,
                                                                          expected=2))]
    assert center(RestartTimedOut("alice", 4)) == []  # already answered
    assert center.join("w2") == [("w2", match(WorkerRegistered))]


def test_a_restart_of_a_cluster_without_workers_is_answered_at_once(center):
    assert center.client_sent(Restart(id=5)) == [("alice", RestartReply(id=5, workers=0,
                                                                        expected=0))]


def test_a_client_gone_during_a_restart_gets_no_answer(center):
    center.join("w1")
    center.client_sent(Restart(id=6))
    center.disconnect("alice")
    assert center.join("w1") == [("w1", WorkerRegistered(address="w1"))]


def test_the_tables_are_compacted_on_a_tick_after_a_big_release(center, monkeypatch):
    import dist_center.state
    monkeypatch.setattr(dist_center.state, "COMPACT_AFTER_RELEASING", 50)
    center.join("w1", nthreads=8)
    keys = [f"k{i}" for i in range(120)]
    center.submit(*keys)
    while center.state.workers["w1"].processing:
        for key in list(center.state.workers["w1"].processing):
            center.finished("w1", key)
    center(TimeElapsed())
    assert center.state.compactions == 0  # nothing released yet: the peak is recorded
    center.release(*keys[:100])
    tasks_before = center.state.tasks
    center(TimeElapsed())
    assert center.state.compactions == 1 and center.state.tasks is not tasks_before
    assert sorted(center.state.tasks) == sorted(keys[100:])
    center(TimeElapsed())
    assert center.state.compactions == 1  # the new peak is what is left


def test_an_input_two_waiting_tasks_share_is_started_once_and_left_running(center):
    # z reads y and x, y reads x: bringing z back recommends x twice, through y (which
    # starts it) and then for z itself.
    center.join("w1")
    out = center.submit(center.spec("x"), center.spec("y", "x"), center.spec("z", "y", "x"),
                        wanted=["z"])

    assert out == [("w1", center.compute("x"))]
    assert center.state_of("x") == "processing"
    assert center.state_of("y") == "waiting"

    center.finish("x")
    center.finish("y")
    center.finish("z")
    assert center.state_of("z") == "memory"
