"""run_task: loading a task's function and arguments, calling it, serializing the result."""
import functools
import gc
import pickle
import sys
import threading
import time
import tracemalloc
import types

import pytest

from dist_protocol.messages import TaskErred
from dist_protocol.serialize import (KeyRef, Payload, deserialize, dumps_function, msgpack_dumps,
                                     serialize)
from dist_worker.events import Execute, ExecutionFailed, ExecutionSucceeded
from dist_worker.execution import (KEEP_SERIALIZED_BELOW, PICKLED_WHEN_ASKED_FROM, hide_loop,
                                   run_task, run_task_on_loop, show_loop, substitute)
from dist_worker.inline_policy import InlinePolicy, thread_waits

from dist_protocol.environment import describe, local_environment

HERE = describe(local_environment())


def msgpack_args(*args, **kwargs):
    return Payload("msgpack", [msgpack_dumps([list(args), kwargs])])


def pickled_args(*args, **kwargs):
    return serialize([list(args), kwargs])


def run(function, args=None, inputs=None, key="k"):
    return run_task(Execute(key, function, args, inputs or {}))


def test_a_function_named_by_import_path_with_msgpack_arguments():
    outcome = run("operator:add", msgpack_args(40, 2))

    assert type(outcome) is ExecutionSucceeded
    assert (outcome.key, outcome.value, outcome.type) == ("k", 42, "int")
    assert outcome.stop >= outcome.start > 0
    assert deserialize(outcome.payload) == 42
    assert outcome.nbytes == outcome.payload.nbytes


def test_a_failed_run_carries_its_start_and_stop():
    raised = run("operator:truediv", msgpack_args(1, 0))
    assert type(raised) is ExecutionFailed
    assert raised.error.exception_type == "ZeroDivisionError"
    assert raised.error.stop >= raised.error.start > 0
    # a function that could not be loaded never ran: no times
    unloaded = run("no_such_module_here:f")
    assert type(unloaded) is ExecutionFailed
    assert unloaded.error.start is None and unloaded.error.stop is None


def test_keyword_arguments_and_no_arguments():
    assert run("builtins:sorted", msgpack_args([3, 1, 2], reverse=True)).value == [3, 2, 1]
    assert run("builtins:list").value == []


def test_a_pickled_function_and_a_nested_import_path():
    assert run(dumps_function(lambda x, y=1: x * y), pickled_args(6, y=7)).value == 42
    assert run("posixpath:join", msgpack_args("a", "b")).value == "a/b"
    assert run("collections:OrderedDict.fromkeys", msgpack_args("ab")).value == {"a": None,
                                                                                "b": None}


def test_key_refs_are_replaced_inside_nested_lists_tuples_sets_and_dicts():
    def echo(*args, **kwargs):
        return args, kwargs

    args = pickled_args([KeyRef("x"), (KeyRef("y"), [KeyRef("x")])], {KeyRef("y"), 5},
                        nested={"deep": [{"deeper": (KeyRef("x"),)}]}, plain=KeyRef("y"))
    outcome = run(dumps_function(echo), args, inputs={"x": 1, "y": "two"})

    assert outcome.value == (([1, ("two", [1])], {"two", 5}),
                             {"nested": {"deep": [{"deeper": (1,)}]}, "plain": "two"})


def test_key_refs_in_msgpack_arguments_are_replaced_too():
    outcome = run("builtins:sum", msgpack_args([KeyRef("a"), KeyRef("b"), 3]),
                  inputs={"a": 1, "b": 2})
    assert outcome.value == 6


def test_a_key_ref_that_is_not_among_the_deps_errs_the_task_naming_the_key():
    # A client in another language that forgot deps: the function must not receive the
    # reference itself (it used to: "TypeError: 'KeyRef' and 'int'").
    for inputs in ({}, {"other": 1}):
        outcome = run("operator:add", msgpack_args(KeyRef("sqrt-1"), 1), inputs=inputs)
        assert type(outcome) is ExecutionFailed
        erred = outcome.error
        assert erred.exception_type == "MissingDependency"
        assert "'sqrt-1'" in erred.message and "deps" in erred.message


@pytest.mark.parametrize("frame, error, named", [
    ("9292d40578c7030561626380", "SerializationError", "extension type 5 "),  # twice
    ("9291d4fb0080", "SerializationError", "extension type -5 "),  # a reserved type
    # msgpack's timestamp, one byte long: as any frame msgpack cannot read
    ("9291d4ff0080", "ValueError", "invalid timestamp"),
], ids=["application", "reserved", "malformed-timestamp"])
def test_arguments_with_an_extension_type_the_protocol_lacks_err_the_task(frame, error, named):
    """A spec client's arguments reached the function as ``msgpack.ExtType`` (or failed to
    build one, "code must be 0~127"); now the task errs, naming the type, and nothing runs."""
    outcome = run("builtins:repr", Payload("msgpack", [bytes.fromhex(frame)]))
    assert type(outcome) is ExecutionFailed
    assert outcome.error.exception_type == error
    assert named in outcome.error.message and outcome.error.start is None


def test_timestamps_in_arguments_reach_the_function_as_utc_datetimes():
    # msgpack's timestamp 64 (d7 ff): 500 ms after 2026-12-07 10:00 UTC
    frame = bytes.fromhex("9291d7ff773594006b1683a080")
    outcome = run("datetime:datetime.isoformat", Payload("msgpack", [frame]))
    assert outcome.value == "2026-12-07T10:00:00.500000+00:00"


def test_substitute_keeps_container_types_and_leaves_other_values_alone():
    inputs = {"x": 1}
    assert substitute(frozenset({KeyRef("x")}), inputs) == frozenset({1})
    assert type(substitute(frozenset({KeyRef("x")}), inputs)) is frozenset
    assert substitute("x", inputs) == "x"
    marker = object()
    assert substitute(marker, inputs) is marker


def test_the_tasks_own_exception_travels_with_its_type_and_traceback():
    outcome = run("operator:truediv", msgpack_args(1, 0))

    assert type(outcome) is ExecutionFailed
    error = outcome.error
    assert (error.key, error.exception_type, error.message) == ("k", "ZeroDivisionError",
                                                                "division by zero")
    assert "ZeroDivisionError" in error.traceback
    assert isinstance(deserialize(error.exception), ZeroDivisionError)


def test_an_exception_that_cannot_be_pickled_still_travels_as_text():
    class Unpicklable(Exception):
        pass

    def fail():
        raise Unpicklable(threading.Lock())

    error = run(dumps_function(fail)).error
    assert error.exception_type == "Unpicklable" and error.exception is None
    assert error.message.startswith("<unlocked _thread.lock object")
    assert "itself could not be sent: " in error.message
    assert "cannot pickle '_thread.lock' object" in error.message
    assert "Unpicklable" in error.traceback


def test_an_exception_pickle_cannot_rebuild_keeps_its_type():
    class TwoArgs(Exception):
        def __init__(self, code, why):
            super().__init__(f"{code}: {why}")
            self.code = code

    class RefusesReduce(Exception):
        def __reduce__(self):
            raise TypeError("no")

    def fail(cls, *args):
        raise cls(*args)

    for cls, args, text in ((TwoArgs, (7, "bad"), "7: bad"), (RefusesReduce, ("x",), "x")):
        error = run(dumps_function(fail), serialize(((cls, *args), {}))).error
        exc = deserialize(error.exception)
        assert type(exc) is cls and str(exc) == text and error.message == text
    assert exc.args == ("x",)
    two = deserialize(run(dumps_function(fail), serialize(((TwoArgs, 7, "bad"), {})))
                      .error.exception)
    assert two.code == 7


def test_a_result_that_cannot_be_pickled_errs_with_a_clear_message():
    outcome = run("threading:Lock", key="make-lock")

    assert type(outcome) is ExecutionFailed
    message = outcome.error.message
    assert message.startswith("the result of make-lock (lock) cannot be serialized, so no one "
                              "could fetch it: ")
    assert "cannot pickle" in message


def _explode():
    raise RuntimeError("this argument cannot be rebuilt here")


class Unloadable:
    def __reduce__(self):
        return (_explode, ())


def test_arguments_that_fail_to_unpickle_err_with_what_unpickling_raised():
    outcome = run("builtins:repr", pickled_args(Unloadable()), key="bad-args")

    assert type(outcome) is ExecutionFailed
    # The original exception, as unpickling it locally would raise, with what was being done.
    assert outcome.error.exception_type == "RuntimeError"
    assert isinstance(deserialize(outcome.error.exception), RuntimeError)
    assert outcome.error.message == (
        f"could not load task bad-args on the worker ({HERE}): RuntimeError: "
        "this argument cannot be rebuilt here")


def test_arguments_from_a_module_the_worker_lacks_err_with_its_name():
    module = types.ModuleType("only_on_the_client")
    exec("class Thing:\n    pass\n", module.__dict__)  # noqa: S102 -- a module only here
    sys.modules["only_on_the_client"] = module
    try:
        frames = [pickle.dumps([[module.Thing()], {}], protocol=5)]
    finally:
        del sys.modules["only_on_the_client"]

    error = run("builtins:repr", Payload("pickle", frames)).error

    assert "No module named 'only_on_the_client'" in error.message
    # (the worker's Python named: another Python's client may have what it lacks)
    assert error.message.startswith(f"could not load task k on the worker ({HERE}): ")


def test_bad_function_paths_and_argument_shapes_err_the_task():
    assert "must look like 'module:function'" in run("operator").error.message
    assert "No module named 'no_such_module'" in run("no_such_module:f").error.message
    assert run("math:pi").error.message.endswith("math:pi is not callable")
    assert "must be a pair" in run("builtins:list",
                                   Payload("msgpack", [msgpack_dumps([1, 2, 3])])).error.message


def test_small_results_keep_their_serialized_form_and_large_ones_do_not():
    small = run("builtins:bytes", msgpack_args(10))
    large = run("builtins:bytes", msgpack_args(KEEP_SERIALIZED_BELOW * 2))

    assert small.payload is not None
    assert large.payload is None and large.nbytes >= KEEP_SERIALIZED_BELOW * 2


def test_plain_results_too_large_to_go_with_their_finish_are_pickled_only_when_asked():
    import numpy

    size = (PICKLED_WHEN_ASKED_FROM + KEEP_SERIALIZED_BELOW) // 2
    plain = run_task(Execute("k", dumps_function(lambda: numpy.zeros(size // 8)), None, {}))
    other = run_task(Execute("k", dumps_function(lambda: {frozenset([b"x" * size])}), None, {}))

    assert plain.payload is None and plain.nbytes >= size  # a peer that asks has it pickled
    assert other.payload is not None  # what only pickling can tell is kept pickled as before


def test_tasks_of_one_dask_layer_are_one_function_to_the_inline_policy():
    # A dask task's function is its whole graph node, key and inputs included: no two alike.
    node = [dumps_function(lambda i=i: i) for i in range(3)]
    key = InlinePolicy().function_key

    assert key(node[0], "('split-abc', 0, 1)") == key(node[1], "('split-abc', 3, 5)")
    assert key(node[0], "('split-abc', 0, 1)") != key(node[0], "('concat-def', 0)")
    assert key(node[0], "inc-123") != key(node[1], "inc-456")  # by their pickles, as before
    assert key(node[2], "inc-789") == key(node[2], "inc-000")
    assert key("operator:add", "('add-abc', 0)") == "operator:add"


def test_a_function_pickle_too_large_to_key_is_neither_copied_nor_ever_run_inline():
    # A literal of a gigabyte in a dask graph is that task's pickle: copying and hashing it on
    # the loop held the worker's heartbeats past the center's limit.
    class Unhashable(bytearray):  # what a copy of it would be made from, but never hashed
        def __bytes__(self):
            raise AssertionError("a large pickle was copied to key it")

    large = Payload("pickle", [Unhashable(InlinePolicy.LARGEST_KEYED + 1)])
    policy = InlinePolicy()
    key = policy.function_key(large, "literal-abc")
    for _ in range(InlinePolicy.NEEDED * 2):
        policy.record(key, 0.0)
    assert not policy.allows(key)
    assert not policy.allows(policy.function_key(large, "literal-def"))


def test_functions_whose_pickles_differ_only_out_of_band_are_each_their_own():
    # A dask literal's array data travels beside its pickle: the pickle alone does not tell
    # two such functions apart, and the one loaded first stood for both.
    numpy = pytest.importorskip("numpy")

    def summing(value):
        buffers = []
        head = pickle.dumps(functools.partial(numpy.sum, numpy.full(4, value)), protocol=5,
                            buffer_callback=buffers.append)
        return Payload("pickle", [head, *(buffer.raw() for buffer in buffers)])

    assert run(summing(1.0), key="literal").value == 4.0
    assert run(summing(2.0), key="literal").value == 8.0


def test_a_dask_tasks_graph_node_is_not_kept_among_the_functions_that_repeat():
    from dist_worker import execution

    execution._functions.clear()
    nodes = [dumps_function(lambda i=i: i) for i in range(3)]
    assert [run(node, key=f"('add-abc', {i})").value for i, node in enumerate(nodes)] == [0, 1, 2]
    assert len(execution._functions) == 0  # each node is one task's: caching it gains nothing
    function = dumps_function(lambda: 7)
    assert run(function, key="seven-1").value == run(function, key="seven-2").value == 7
    assert len(execution._functions) == 1  # a function that repeats is kept as before
    not_callable = run(serialize(3), key="('three-abc', 0)")
    assert "the task's function is a int, not callable" in not_callable.error.message


def _new_closures(count, size):
    """``count`` functions pickled by value, each holding ``size`` bytes of its own, as a
    client submitting a new lambda each time sends them (in a buffer read off the wire)."""
    return [Payload("pickle", [bytearray(dumps_function(
        lambda data=b"%d" % i + bytes(size): len(data)).frames[0])]) for i in range(count)]


def _traced_growth(step, items):
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for item in items:
            step(item)
        gc.collect()  # (a class is in reference cycles of its own: freed by the collector)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_functions_kept_to_be_loaded_again_hold_a_bounded_number_of_bytes():
    # Each new closure of half a megabyte was kept, pickle and function, up to 512 of them.
    closures = _new_closures(96, 2**19)
    grown = _traced_growth(lambda function: run(function, key="lambda-new"), closures)
    assert grown < 40 * 2**20  # 96 MB before: every pickle and every function it made
    function = dumps_function(lambda: 7)
    assert run(function, key="seven-1").value == run(function, key="seven-2").value == 7


def test_the_inline_policy_keys_new_functions_by_a_few_bytes_each():
    # It remembers 1,024 functions by their pickles: a copy of each new closure's megabyte.
    closures = _new_closures(64, 2**19)
    policy = InlinePolicy()
    grown = _traced_growth(
        lambda function: policy.record(policy.function_key(function, "lambda-new"), 0.0),
        closures)
    assert grown < 2**20  # 32 MB before
    assert policy.function_key(closures[0], "a") != policy.function_key(closures[1], "a")
    assert policy.function_key(closures[0], "a") == policy.function_key(
        Payload("pickle", [bytes(closures[0].frames[0])]), "b")


def _making_a_class_around(data):
    def task():
        class Result:  # a new class at each call, its method reaching the task's closure
            def size(self):
                return len(data)
        return Result()
    return dumps_function(task)


def test_classes_tasks_make_are_remembered_only_while_they_live():
    # The class of each result is remembered (pickled for clients, checked for sizing): a
    # class made at each call kept its closure's megabyte, 1,000 classes of them. (Functions
    # this large are not kept for reuse either.)
    functions = [_making_a_class_around(b"%d" % i + bytes(2**20)) for i in range(30)]
    sizes = []
    grown = _traced_growth(lambda function: sizes.append(run(function).value.size()), functions)

    assert sizes == [len(b"%d" % i) + 2**20 for i in range(30)]
    assert grown < 4 * 2**20  # 30 MB before
    assert run(dumps_function(functools.partial(dict, a=1))).value == {"a": 1}


def test_inline_policy_admits_only_functions_proven_fast_and_bars_slow_ones():
    policy = InlinePolicy()
    for _ in range(InlinePolicy.NEEDED - 1):
        policy.record("fast", InlinePolicy.FAST / 2)
    assert not policy.allows("fast")
    policy.record("fast", InlinePolicy.FAST / 2)
    assert policy.allows("fast")

    policy.record("fast", (InlinePolicy.FAST + InlinePolicy.SLOW) / 2)  # middling: start over
    assert not policy.allows("fast")

    for _ in range(InlinePolicy.STRIKES):
        policy.record("slow", InlinePolicy.SLOW * 2)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("slow", 0.0)
    assert not policy.allows("slow")


def test_inline_policy_sends_a_function_slow_once_back_to_the_pool_without_barring_it():
    policy = InlinePolicy()
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    policy.record("f", InlinePolicy.SLOW * 2)  # preempted, or waited for the GIL
    assert not policy.allows("f")
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    assert policy.allows("f")  # fast again: back on the loop

    # Slow runs far apart never add up to a bar...
    for _ in range(InlinePolicy.STRIKES * 2):
        for _ in range(InlinePolicy.WINDOW):
            policy.record("f", InlinePolicy.FAST / 2)
        policy.record("f", InlinePolicy.SLOW * 2)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    assert policy.allows("f")

    # ...nor do slow runs on the pool, which stall nothing...
    for _ in range(InlinePolicy.STRIKES):
        policy.record("f", InlinePolicy.SLOW * 2, inline=False)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2, inline=False)
    assert policy.allows("f")

    # ...but a function slow again and again on the loop (it blocks) is barred for good.
    for _ in range(InlinePolicy.STRIKES):
        for _ in range(InlinePolicy.NEEDED):
            policy.record("f", InlinePolicy.FAST / 2)
        policy.record("f", InlinePolicy.SLOW * 2)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    assert not policy.allows("f")


def test_inline_policy_never_bars_a_function_for_runs_the_system_preempted():
    """On a loaded machine a trivial function's run on the loop is now and then taken off the
    CPU for longer than ``SLOW``; three such runs fell within ``WINDOW`` sooner or later in a
    long map, and the rest of it went through the pool (a map of 200,000 at 0.61x the 10k
    rate, against 0.99x in the run before it). A run during which the loop's thread never
    waited did not block: it is sent back to the pool, as any slow run, never barred."""
    waits = [0]
    policy = InlinePolicy(waits=lambda: waits[0])
    policy.stretch_begins()
    for _ in range(InlinePolicy.STRIKES * 2):
        for _ in range(InlinePolicy.NEEDED):
            policy.record("f", InlinePolicy.FAST / 2)
        policy.record("f", InlinePolicy.SLOW * 2)  # preempted: the thread never waited
        assert not policy.allows("f")
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    assert policy.allows("f")

    # The same runs each having waited (on a lock, a socket: blocked) bar it.
    for _ in range(InlinePolicy.STRIKES):
        for _ in range(InlinePolicy.NEEDED):
            policy.record("f", InlinePolicy.FAST / 2)
        waits[0] += 1
        policy.record("f", InlinePolicy.SLOW * 2)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    assert not policy.allows("f")

    # Where waits are not counted, every slow run on the loop is a strike, as before.
    unknown = InlinePolicy(waits=lambda: None)
    unknown.stretch_begins()
    for _ in range(InlinePolicy.STRIKES):
        for _ in range(InlinePolicy.NEEDED):
            unknown.record("f", InlinePolicy.FAST / 2)
        unknown.record("f", InlinePolicy.SLOW * 2)
    for _ in range(InlinePolicy.NEEDED):
        unknown.record("f", InlinePolicy.FAST / 2)
    assert not unknown.allows("f")


def test_a_threads_waits_count_a_sleep():
    before = thread_waits()
    if before is None:
        pytest.skip("this system does not count a thread's waits")
    time.sleep(0.001)
    assert thread_waits() > before


def test_inline_policy_bars_at_once_a_function_whose_run_stalled_the_loop():
    """No preemption lasts ``STALLED``: such a run blocked; two more would stall the loop
    again, peers and clients waiting through each."""
    policy = InlinePolicy()
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    policy.record("f", InlinePolicy.STALLED * 2)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    assert not policy.allows("f")
    # on the pool such a run stalls nothing
    for _ in range(InlinePolicy.NEEDED):
        policy.record("g", InlinePolicy.FAST / 2)
    policy.record("g", InlinePolicy.STALLED * 2, inline=False)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("g", InlinePolicy.FAST / 2)
    assert policy.allows("g")


def test_inline_policy_times_runs_that_raised_as_any_other():
    """A function that blocks on the loop and then raises (a timeout waiting on a service)
    stalls it as long as one that returns; uncounted, it stayed on the loop for ever."""
    def raised(after):
        return TaskErred(key="k", exception_type="TimeoutError", message="", start=100.0,
                         stop=100.0 + after)

    policy = InlinePolicy()
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    # a run that raised fast changes nothing (raising costs the loop more than the run)
    policy.record_failed("f", raised(InlinePolicy.FAST / 2))
    assert policy.allows("f")
    for _ in range(InlinePolicy.NEEDED):
        policy.record_failed("never", raised(InlinePolicy.FAST / 2))
    assert not policy.allows("never")
    blocked = raised(InlinePolicy.SLOW * 2)
    for _ in range(InlinePolicy.STRIKES):
        for _ in range(InlinePolicy.NEEDED):
            policy.record("f", InlinePolicy.FAST / 2)
        policy.record_failed("f", blocked)
    for _ in range(InlinePolicy.NEEDED):
        policy.record("f", InlinePolicy.FAST / 2)
    assert not policy.allows("f")
    # one that could not be loaded never ran: no times, nothing recorded
    unloaded = run("no_such_module_here:f").error
    policy.record_failed("g", unloaded)
    assert not policy.allows("g")


# -- large plain results are not pickled until someone asks -----------------------------------
def _count_serializations(monkeypatch) -> list:
    from dist_worker import execution

    calls: list = []

    def counting(value, *args, **kwargs):
        calls.append(type(value).__name__)
        return serialize(value, *args, **kwargs)

    monkeypatch.setattr(execution, "serialize", counting)
    return calls


def test_a_large_array_or_frame_result_is_sized_not_pickled(monkeypatch):
    import numpy
    import pandas

    calls = _count_serializations(monkeypatch)
    frame = pandas.DataFrame({"k": numpy.arange(10_000), "x": numpy.ones(10_000)})
    groups = {i: frame for i in range(3)}
    for value in (numpy.ones(20_000), frame, frame["x"], groups, Groups(groups),
                  (numpy.ones(10_000), "label")):
        outcome = run(dumps_function(lambda v=value: v))
        assert type(outcome) is ExecutionSucceeded
        assert outcome.payload is None and type(outcome.value) is type(value)
        pickled = serialize(value).nbytes
        assert 0.5 * pickled <= outcome.nbytes <= 3.5 * pickled
    assert calls == []


def test_small_results_and_large_ones_that_may_not_pickle_are_still_pickled_at_once(monkeypatch):
    import numpy

    calls = _count_serializations(monkeypatch)
    small = numpy.ones(100)
    assert deserialize(run(dumps_function(lambda: small)).payload).tolist() == small.tolist()
    objects = numpy.array([object() for _ in range(10_000)], dtype=object)
    assert type(run(dumps_function(lambda: objects))) is ExecutionSucceeded
    assert calls == ["ndarray", "ndarray"]

    for which in range(HOLDERS_OF_A_LOCK):
        outcome = run(dumps_function(holding_a_lock), msgpack_args(which), key="held")
        assert type(outcome) is ExecutionFailed, which
        assert "cannot be serialized" in outcome.error.message


class Groups(dict):
    """As dask's shuffle groups: a dict subclass pickled as its items."""


HOLDERS_OF_A_LOCK = 8


def holding_a_lock(which: int):
    """Large values of plain data but for one lock somewhere, made on the worker."""
    import numpy
    import pandas

    lock = threading.Lock()
    ones = numpy.ones(10_000)
    if which == 0:
        return pandas.DataFrame({"x": ones, "lock": [lock] * 10_000})
    if which == 1:
        return pandas.DataFrame({"x": ones}).rename(columns={"x": lock})
    if which == 2:
        return pandas.DataFrame({"x": ones}).set_axis(pandas.Index([lock] * 10_000, dtype=object))
    if which == 3:
        return pandas.Series(ones, name=lock)
    if which == 4:
        return [ones, lock]
    if which == 5:
        return {"data": ones, "lock": lock}
    if which == 6:
        groups = Groups(data=ones)
        groups.lock = lock
        return groups
    frame = pandas.DataFrame({"x": ones})
    frame.attrs["lock"] = lock
    return frame


def fork_and_return(path):
    """Forks (no exec) and returns in both processes: the child's return is a bug of the
    task's, which must not leave a copy of the worker behind."""
    import os
    if os.fork() == 0:
        with open(path, "a") as out:
            out.write("child returned\n")
        return "child"
    return "parent"


def test_a_process_the_task_forked_exits_when_it_returns_into_the_worker(tmp_path):
    import os
    marks = tmp_path / "marks"
    test_process = os.getpid()
    outcome = run(dumps_function(fork_and_return), pickled_args(str(marks)))
    if os.getpid() != test_process:  # the forked child came back here: the bug
        os._exit(99)
    assert type(outcome) is ExecutionSucceeded and outcome.value == "parent"
    pid, status = os.wait()
    assert os.waitstatus_to_exitcode(status) == 0  # it exited where it left the task
    assert marks.read_text() == "child returned\n"  # after running the task's code to its end


def stop_the_current_loop():
    import asyncio
    try:
        asyncio.get_event_loop().stop()
    except RuntimeError as exc:  # as on a pool thread: there is none
        return f"no loop: {exc}"
    return "stopped one"


def run_a_loop_of_its_own():
    import asyncio

    async def answer():
        return 42
    return asyncio.run(answer())


def test_a_task_run_on_the_event_loop_cannot_see_it_as_on_a_pool_thread():
    """A fast function runs inline on the worker's loop: there, asyncio.run() failed (a loop
    is running) and a stop() of the current loop stopped the worker's, ending the process."""
    import asyncio

    async def worker_loop():
        stop = run_task_on_loop(Execute("s", dumps_function(stop_the_current_loop), None, {}))
        own = run_task_on_loop(Execute("r", dumps_function(run_a_loop_of_its_own), None, {}))
        await asyncio.sleep(0)  # the loop goes on
        assert asyncio.get_event_loop() is asyncio.get_running_loop()  # and is ours again
        return stop, own

    stop, own = asyncio.run(worker_loop())
    assert type(stop) is ExecutionSucceeded and stop.value.startswith("no loop"), stop
    assert type(own) is ExecutionSucceeded and own.value == 42, own


def test_the_loop_handed_to_hide_loop_is_hidden_as_the_one_asyncio_names():
    """The worker hands its loop over rather than have it looked up (a system call each lone
    task): hidden and shown again all the same."""
    import asyncio

    async def worker_loop():
        loop = asyncio.get_running_loop()
        hidden = hide_loop(loop)
        try:
            seen = asyncio._get_running_loop()
        finally:
            show_loop(hidden)
        return loop, hidden, seen, asyncio.get_running_loop()

    loop, hidden, seen, after = asyncio.run(worker_loop())
    assert hidden is loop and seen is None and after is loop


def test_a_small_result_is_packed_as_msgpack_too_only_when_asked():
    """The msgpack copy is for clients that read no pickle: made only when compute-task asked,
    and only of a value msgpack can carry."""
    args = msgpack_args(2, 3)
    plain = run_task(Execute("k", "operator:add", args, {}))
    asked = run_task(Execute("k", "operator:add", args, {}, value_msgpack=True))
    cannot = run_task(Execute("k", "builtins:complex", args, {}, value_msgpack=True))

    assert plain.msgpack is None
    assert asked.msgpack == Payload("msgpack", [msgpack_dumps(5)])
    assert cannot.msgpack is None and cannot.payload is not None


async def _async_add(x, y):
    import asyncio
    await asyncio.sleep(0)
    return x + y


async def _async_fail():
    import asyncio
    await asyncio.sleep(0)
    raise KeyError("inside the coroutine")


def test_an_async_def_task_gives_its_value_not_the_coroutine():
    outcome = run(dumps_function(_async_add), pickled_args(40, 2))
    assert type(outcome) is ExecutionSucceeded
    assert (outcome.value, outcome.type) == (42, "int")
    raised = run(dumps_function(_async_fail))
    assert type(raised) is ExecutionFailed
    assert raised.error.exception_type == "KeyError"
    assert "inside the coroutine" in raised.error.message


def test_an_async_def_task_met_on_the_event_loop_goes_to_a_pool_thread():
    import asyncio
    import warnings

    import pytest
    from dist_protocol import task_context
    from dist_protocol.task_context import RunOnThread, TaskContext

    context = TaskContext(key="a", worker="w", center="c", token=None, ssl_context=None,
                          slots=None, on_loop=True)

    async def on_the_loop():
        task_context.set_current(context)
        try:
            return run_task_on_loop(Execute("a", dumps_function(_async_add), pickled_args(1, 2),
                                            {}))
        finally:
            task_context.set_current(None)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        with pytest.raises(RunOnThread):
            asyncio.run(on_the_loop())


def lower_the_recursion_limit(limit):
    sys.setrecursionlimit(limit)
    return sys.getrecursionlimit()


def recurse(depth):
    return 0 if depth == 0 else 1 + recurse(depth - 1)


def test_a_task_that_lowers_the_recursion_limit_lowers_it_for_its_own_run_only():
    """The limit is the process's: left at 60, every later task recursing a little (or
    unpickling a nested value, or importing a package) failed with RecursionError."""
    limit = sys.getrecursionlimit()
    try:
        assert run(dumps_function(lower_the_recursion_limit), pickled_args(60)).value == 60
        assert sys.getrecursionlimit() == limit
        assert run(dumps_function(recurse), pickled_args(200)).value == 200
        # a task may raise it, for itself and those after it
        assert run(dumps_function(lower_the_recursion_limit),
                   pickled_args(limit + 500)).value == limit + 500
        assert sys.getrecursionlimit() == limit + 500
    finally:
        sys.setrecursionlimit(limit)


def leave_a_tracer_and_a_profiler():
    import cProfile
    seen = []
    sys.settrace(lambda frame, event, arg: seen.append(frame.f_code.co_name))
    cProfile.Profile().enable()
    return sys.gettrace() is not None and the_threads_tracer_and_profiler()[1:] != (None, None)


def the_threads_tracer_and_profiler():
    # (cProfile of Python 3.12 and later holds sys.monitoring's profiler tool instead)
    monitoring = getattr(sys, "monitoring", None)
    tool = monitoring.get_tool(monitoring.PROFILER_ID) if monitoring is not None else None
    return sys.gettrace(), sys.getprofile(), tool


def test_a_tracer_or_profiler_a_task_leaves_on_its_thread_ends_with_it():
    """Left on, every later task on the thread (the event loop's own work too, for a task
    run inline) was traced, at a third of the speed, and the tracer's list grew."""
    before = the_threads_tracer_and_profiler()  # (a coverage run has its own tracer)
    try:
        assert run(dumps_function(leave_a_tracer_and_a_profiler)).value is True
        assert the_threads_tracer_and_profiler() == before
        assert tuple(run(dumps_function(the_threads_tracer_and_profiler)).value) == before
    finally:
        sys.settrace(before[0])
        sys.setprofile(before[1])


def test_a_traceback_deeper_than_the_most_formatted_keeps_both_ends_and_counts_the_rest():
    from dist_worker.execution import MAX_TRACEBACK_FRAMES, error_event

    def down(depth):
        if depth == MAX_TRACEBACK_FRAMES + 500:
            raise ValueError("at the bottom")
        return down(depth + 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(MAX_TRACEBACK_FRAMES * 2)
    try:
        down(0)
    except ValueError as exc:
        text = error_event("k", exc).error.traceback
    finally:
        sys.setrecursionlimit(limit)
    # (the frames: this test's, then down's, MAX_TRACEBACK_FRAMES + 501 of them)
    assert "  ... (502 frames left out) ...\n" in text
    assert text.startswith("Traceback (most recent call last):\n")
    assert text.endswith("ValueError: at the bottom\n")
    assert text.count("in down") < 20  # (the repeats folded, as Python prints them)
