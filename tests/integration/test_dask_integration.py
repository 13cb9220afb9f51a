"""dask on dist, against real processes: dask's own conformance tests for a ``get`` function,
futures inside graphs, stable tokens, one graph for several collections, no stale results
after a failed graph (the workloads compared with dask's synchronous scheduler are in
test_dask_workloads.py)."""
from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import textwrap

import pytest

dask = pytest.importorskip("dask")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from dask import delayed  # noqa: E402
from dask.base import tokenize  # noqa: E402
from dask.utils_test import GetFunctionTestMixin  # noqa: E402
from dist_client import Executor, Future  # noqa: E402
from dist_protocol.serialize import SerializationError  # noqa: E402

pytestmark = pytest.mark.timeout(120)
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 2}
_runs = itertools.count()


@pytest.fixture(scope="module")
def e(module_cluster):
    with Executor(module_cluster.address) as executor:
        yield executor


class TestDaskGetContract(GetFunctionTestMixin):
    """dask.utils_test.GetFunctionTestMixin, unchanged, against ``Executor.get``."""

    @pytest.fixture(autouse=True)
    def _executor(self, e):
        self.get = e.get


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def counted(x):
    """Returns a different value each run: equal values mean one run."""
    return (x, next(_runs), id(object()))


def fails(x):
    raise ValueError(f"first graph failed on {x}")


# -- 1. futures inside graphs ---------------------------------------------------------------------
def test_futures_inside_dask_graphs_become_their_values_on_the_workers(e):
    x = np.arange(100)
    future = e.scatter(x)
    assert delayed(np.sum)(future).compute(scheduler=e.get) == x.sum()
    assert e.get({"y": (np.sum, future)}, "y") == x.sum()
    assert (e.get({"y": future}, "y") == x).all()
    computed = e.submit(inc, 41)
    assert e.get({"y": (inc, computed), "z": (add, "y", computed)}, ["y", "z"]) == (43, 85)
    assert e.compute(delayed(inc)(computed)).result(30) == 43
    # A future inside a list argument of a delayed call.
    assert delayed(sum)([computed, computed]).compute(scheduler=e.get) == 84
    # Optimization fuses the delayed call on a future into a subgraph of the array's graph.
    doubled = da.from_delayed(delayed(np.multiply)(future, 2), shape=x.shape, dtype=x.dtype)
    assert doubled.sum().compute(scheduler=e.get) == 2 * x.sum()
    # dask hands persist to the executor (Executor.persist): the result stays on the cluster.
    (persisted,) = dask.persist(delayed(np.sum)(future), scheduler=e.get)
    assert [type(v) for v in persisted.__dask_graph__().values()] == [Future]
    assert persisted.compute(scheduler=e.get) == x.sum()


def test_a_graph_depending_on_an_unknown_key_is_refused_up_front(e):
    from dask._task_spec import Alias, Task
    graph = {"y": Task("y", inc, Alias("nowhere"))}
    with pytest.raises(ValueError, match="'nowhere'"):
        e.get(graph, "y")
    with pytest.raises(KeyError):
        e.get({"x": 1}, "y")


# -- 2. tokens ------------------------------------------------------------------------------------
def test_a_futures_dask_token_is_its_key(e):
    future = e.submit(inc, 1)
    assert tokenize(future) == tokenize(future)
    assert delayed(inc, pure=True)(future).key == delayed(inc, pure=True)(future).key
    assert tokenize(future) != tokenize(e.submit(inc, 2))


# -- 3. one graph for several collections ------------------------------------------------------
def test_compute_of_several_collections_runs_shared_parts_once(e):
    shared = delayed(counted)(1, dask_key_name=f"shared-{next(_runs)}")
    a = delayed(lambda s: s)(shared)
    b = delayed(lambda s: s)(shared)
    fa, fb = e.compute([a, b])
    assert fa.result(30) == fb.result(30)  # the shared task ran once for both


# -- 4. a failed graph keeps nothing alive ---------------------------------------------------------
def test_a_failed_get_releases_its_futures_and_a_new_graph_gets_fresh_results(e):
    with pytest.raises(ValueError, match="first graph") as info:
        e.get({"a": 1, "b": (fails, "a")}, "b")
    kept = info.value  # the exception lives on, as a REPL keeps the last one
    gc.collect()
    assert "b" not in e.who_has()  # no future of the failed graph is held
    assert e.get({"a": 2, "b": (inc, "a")}, "b") == 3
    del kept


def test_a_new_graph_never_inherits_the_error_of_a_future_still_held_under_its_key(e):
    held = e.submit(fails, 1, key="stale-name")
    with pytest.raises(ValueError, match="first graph"):
        held.result(timeout=60)
    assert e.get({"stale-name": (inc, 1)}, "stale-name") == 2
    del held


def test_a_graph_after_get_returned_never_gets_the_tasks_of_the_last_one_under_shared_names(e):
    # dask names a task by what it computes, but an optimization set for one ``compute`` (its
    # ``array_optimize``) changes what runs under the same names: the last graph's output,
    # released when ``get`` returned, must be gone before the next graph arrives, or its
    # inputs, kept as its lineage, answer for the new graph's.
    run = next(_runs)
    first = {f"a-{run}": 1, f"b-{run}": 2, f"sum-{run}": (add, f"a-{run}", f"b-{run}")}
    assert e.get(first, f"sum-{run}") == 3
    second = {f"a-{run}": 10, f"b-{run}": 20, f"total-{run}": (add, f"a-{run}", f"b-{run}")}
    assert e.get(second, f"total-{run}") == 30


# -- 5. get's contract --------------------------------------------------------------------------
def test_get_returns_the_nested_structure_of_its_keys(e):
    graph = {("x", 0): 1, ("x", 1): 2, "s": (add, ("x", 0), ("x", 1))}
    assert e.get(graph, [[("x", 0)], [("x", 1), "s"]]) == ((1,), (2, 3))
    assert e.get(graph, ("x", 1)) == 2


def test_array_literals_alike_but_for_their_data_are_each_their_own(e):
    """A literal array's data travels beside its node's pickle, out of band: two literals of
    one key, shape and type, in two graphs, have the same pickle but for it, and neither is
    taken for the other (a worker caches loaded functions by their pickles)."""
    np = pytest.importorskip("numpy")
    for value in (1.0, 2.0):
        graph = {"literal": np.full(2**16, value), "total": (np.sum, "literal")}
        assert e.get(graph, "total") == value * 2**16


def test_a_key_spelled_with_numpy_integers_is_the_same_key(e):
    """dask compares keys by equality: ``("x", np.int64(0))`` is ``("x", 0)`` (dask.array's
    diagonal names its inputs so), in a task's inputs and among the keys asked for."""
    graph = {("x", 0): 1, "y": (add, ("x", np.int64(0)), 10)}
    assert e.get(graph, ["y", ("x", np.int64(0))]) == (11, 1)
    ones = da.ones((8, 8), chunks=4)
    summed = da.diagonal(ones) + ones
    assert summed.compute(scheduler=e.get).tolist() == np.full((8, 8), 2.0).tolist()


class Fragile:
    """Unpickling it raises ValueError (``int("refused")``), on the worker."""

    def __reduce__(self):
        return (int, ("refused",))


def test_an_argument_that_fails_to_unpickle_keeps_its_exception_type(e):
    with pytest.raises(ValueError, match="refused") as info:
        e.submit(repr, Fragile(), pure=False).result(30)
    assert not isinstance(info.value, SerializationError)
    assert "could not load task" in "".join(info.value.__notes__)
    with pytest.raises(ValueError, match="refused"):
        e.get({"y": (repr, Fragile())}, "y")


def fill(value, n):
    return np.full(n, value)


def write_first(array, value):
    array[0] = value
    return array


@pytest.mark.parametrize("n", [10, 100_000])  # results sent in a message, and on their own
def test_computed_arrays_are_writeable_as_with_dask(e, n):
    """A result is the caller's own, as dask's schedulers give it: writing into an array from
    ``compute`` neither fails nor changes what the graph computes next time; a task gets
    inputs it may write into, also from another worker."""
    x = da.arange(n, chunks=n // 2)
    computed = x.compute(scheduler=e.get)
    computed[0] = 42
    assert x[0].compute(scheduler=e.get) == 0
    (values,) = dask.compute(x, scheduler=e.get)
    values[0] = 42
    assert e.compute(x).result(60)[0] == 0
    workers = sorted(e.ncores())
    made = e.submit(fill, 7, n, workers=[workers[0]])
    written = e.submit(write_first, made, -1, workers=[workers[1]])
    assert written.result(60)[:2].tolist() == [-1, 7]


# The workloads compared with dask's synchronous scheduler: test_dask_workloads.py.


def started(*_inputs):
    import time
    return time.monotonic()


def test_graphs_run_in_dask_order(make_cluster):
    """Eight independent chains on one thread: their first tasks start in the order dask
    ranks them (``dask.order``, which finishes started work before starting more), not in the
    order they were submitted."""
    from dask.order import order
    chains = [f"c{i}" for i in range(8)]
    chains.reverse()  # inserted last to first: dask ranks them by name instead
    graph = {}
    for chain in chains:
        graph[f"{chain}-1"] = (started,)
        graph[f"{chain}-2"] = (started, f"{chain}-1")
    ranks = order(graph)
    by_rank = sorted(chains, key=lambda chain: ranks[f"{chain}-1"])
    # Submitted without dask's order, they started c0, c1, ... here.
    assert by_rank[:2] != ["c0", "c1"]
    cluster = make_cluster(n_workers=1, nthreads=1)
    with cluster.executor() as executor:
        times = dict(zip(graph, executor.get(graph, list(graph))))
    assert sorted(chains, key=lambda chain: times[f"{chain}-1"]) == by_rank, (ranks, times)


def _gated(value, path):
    """Returns ``value`` once ``path`` exists (the test creates it)."""
    import os
    import time
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def test_intermediate_results_are_freed_as_soon_as_their_dependents_ran(e, tmp_path,
                                                                           wait_until):
    """``get`` wants only the keys asked for: an input is freed once the tasks reading it
    ran, not kept (and spilled) until the whole graph is done."""
    import concurrent.futures
    gate = tmp_path / "go"
    # (not a linear chain, which would run as one task: x has two readers, z two inputs)
    graph = {"freed-x": (np.arange, 1000), "freed-y": (np.sum, "freed-x"),
             "freed-w": (len, "freed-x"),
             "freed-z": (_gated, (sum, ["freed-y", "freed-w"]), str(gate))}

    def at_center(key):
        return [(t["start"], t["finish"]) for t in e.story(key) if not t["worker"]]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(e.get, graph, "freed-z")
        wait_until(lambda: ("processing", "memory") in at_center("freed-y"),
                   what="y in memory")
        # z is still running (held at its gate), and x's data is freed already (its record
        # may stay, released, as z's lineage).
        assert at_center("freed-x")[-1] in [("memory", "released"), ("memory", "forgotten")]
        gate.touch()
        assert result.result(timeout=60) == np.arange(1000).sum() + 1000


def test_a_linear_chain_runs_as_one_task_under_its_last_key(e):
    """Each task of a chain is the only input of the next and read by nothing else: nothing
    could run in parallel, so the chain is one task (no round trip through the center per
    link). Keys asked for, and tasks read by several, stay tasks of their own."""
    graph = {"chain-a": (np.arange, 10), "chain-b": (np.multiply, "chain-a", 2),
             "chain-c": (np.sum, "chain-b"), "chain-d": (np.negative, "chain-c"),
             "chain-e": (np.add, "chain-c", 1)}

    assert e.get(graph, ["chain-d", "chain-e"]) == (-90, 91)

    ran = {t["key"] for t in e.story(*graph) if not t["worker"] and t["finish"] == "memory"}
    assert ran == {"chain-c", "chain-d", "chain-e"}  # a and b ran inside c (read by two)

    a, c = e.get(graph, ["chain-a", "chain-c"])
    assert list(a) == list(range(10)) and c == 90
    ran = {t["key"] for t in e.story("chain-a") if not t["worker"] and t["finish"] == "memory"}
    assert ran == {"chain-a"}  # asked for: its own task


def _shuffled(npartitions=4):
    frame = pd.DataFrame({"k": np.arange(400) % 13, "v": np.arange(400)})
    return dd.from_pandas(frame, npartitions=npartitions).shuffle("k")


def _uses_partd(collection) -> bool:
    return any("partd" in str(key) for key in dict(collection.__dask_graph__()))


def test_shuffles_are_made_of_tasks_while_an_executor_is_open(e):
    """dask's default shuffle for a scheduler other than dask.distributed's goes through a
    partd directory on the local disk: wrong as soon as the shuffle's tasks run on several
    hosts. With an executor open an unset method means the task shuffle; a chosen one holds."""
    assert dask.config.get("dataframe.shuffle.method") == "tasks"
    assert not _uses_partd(_shuffled())
    expected = _shuffled().compute(scheduler="sync").sort_values("v")
    for result in (dask.compute(_shuffled(), scheduler=e.get)[0],
                   e.compute(_shuffled()).result(timeout=60),
                   e.persist(_shuffled()).compute(scheduler=e.get)):
        pd.testing.assert_frame_equal(result.sort_values("v"), expected)
    with dask.config.set({"dataframe.shuffle.method": "disk"}):
        assert _uses_partd(_shuffled())


def test_the_last_executor_closed_leaves_the_shuffle_method_unset(module_cluster):
    previous = dask.config.get("dataframe.shuffle.method")
    with dask.config.set({"dataframe.shuffle.method": None}):
        # The module's executor is open: the count goes 2 -> 1 and the setting stays.
        with Executor(module_cluster.address):
            pass
        assert dask.config.get("dataframe.shuffle.method", None) is None  # set inside, unset here
    assert dask.config.get("dataframe.shuffle.method") == previous


def test_futures_of_a_persisted_collection_and_of_containers(e):
    from dist_client import futures_of
    x = e.persist(da.arange(40, chunks=10) + 1)
    held = futures_of(x)
    assert len(held) == 4 and all(isinstance(f, Future) for f in held)
    assert sorted(e.gather(held, timeout=60)[0].tolist()) == list(range(1, 11))
    one = e.submit(inc, 1)
    assert futures_of([one, {"a": (one, 2)}, 3]) == [one]
    assert futures_of(42) == []


def _where_computed(x):
    """The process that ran the task: this test's, or a worker's."""
    import os
    return x, os.getpid()


def test_an_open_executor_is_dasks_default_scheduler(e, module_cluster):
    """As a dask.distributed Client: once an executor is open, ``compute()`` without a
    scheduler runs on the cluster -- on that of the innermost ``with`` block, else the most
    recent executor still running -- and a scheduler the user chose holds."""
    import os
    mine = os.getpid()
    assert delayed(_where_computed)(1).compute()[1] != mine
    assert dask.compute(delayed(_where_computed)(2))[0][1] != mine
    total = da.arange(100, chunks=10).sum()
    assert total.compute() == 4950
    with dask.config.set(scheduler="sync"):
        assert delayed(_where_computed)(3).compute()[1] == mine
    newer = Executor(module_cluster.address)
    try:
        seen = []
        original = newer.get
        newer.get = lambda dsk, keys, **kw: seen.append(1) or original(dsk, keys, **kw)
        # The fixture's ``with`` block keeps its executor the default, as dask's client's
        assert delayed(_where_computed)(4).compute()[1] != mine and seen == []
        with newer:
            assert delayed(_where_computed)(5).compute()[1] != mine
        assert seen == [1]
    finally:
        newer.close()
    assert delayed(_where_computed)(6).compute()[1] != mine  # the older one again


def _lock(_):
    import threading
    return threading.Lock()


def _is_a_lock(value):
    return type(value).__name__ == "lock"


def test_an_executor_passed_as_dasks_scheduler_runs_the_graph_on_the_cluster(e):
    """``scheduler=e`` is ``e.get``: the graph goes to the cluster whole and its
    intermediate results stay there (a lock cannot travel), not dask's local scheduler
    submitting each task and taking every result back."""
    lock_is_a_lock = delayed(_is_a_lock)(delayed(_lock)(1))
    assert lock_is_a_lock.compute(scheduler=e) is True
    assert dask.compute(lock_is_a_lock, scheduler=e) == (True,)
    with dask.config.set(scheduler=e):
        assert lock_is_a_lock.compute() is True
        assert da.arange(100, chunks=10).sum().compute() == 4950


def test_closing_the_only_executor_unsets_the_scheduler(module_cluster):
    program = textwrap.dedent(f"""
        import dask
        from dist_client import Executor
        shorten = dask.config.get("admin.traceback.shorten")
        e = Executor({module_cluster.address!r})
        assert dask.delayed(sum)([1, 2]).compute() == 3
        assert dask.config.get("scheduler") is not None
        assert len(dask.config.get("admin.traceback.shorten")) > len(shorten)
        e.close()
        assert dask.config.get("scheduler", None) is None
        assert dask.config.get("dataframe.shuffle.method", None) is None
        assert dask.config.get("admin.traceback.shorten") == shorten
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_dasks_names_for_a_cluster_scheduler_name_the_executor_while_one_is_open(
        module_cluster):
    """``scheduler="distributed"`` (or ``"dask.distributed"``), as code written for
    dask.distributed says it, runs on the open executor's cluster, and persists there;
    after the last executor closed, dask's own error for no client."""
    program = textwrap.dedent(f"""
        import os
        import dask
        from dask.base import get_scheduler
        from dist_client import Executor, futures_of
        e = Executor({module_cluster.address!r})
        where = dask.delayed(os.getpid)()
        assert where.compute(scheduler="distributed") != os.getpid()
        assert dask.compute(where, scheduler="dask.distributed")[0] != os.getpid()
        with dask.config.set(scheduler="distributed"):
            assert where.compute() != os.getpid()
            assert len(futures_of(dask.delayed(sum)([1, 2]).persist())) == 1
        (kept,) = dask.persist(dask.delayed(sum)([3, 4]), scheduler="distributed")
        assert len(futures_of(kept)) == 1 and kept.compute() == 7
        e.close()
        try:
            get_scheduler(scheduler="distributed")
        except (RuntimeError, ImportError):
            print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_persist_without_a_scheduler_keeps_the_collections_on_the_cluster(e):
    """As with a dask.distributed Client: ``x.persist()`` and ``dask.persist`` give
    collections backed by the cluster's futures, not data brought to this process."""
    from dist_client import futures_of, wait
    x = (da.arange(40, chunks=10) + 1).persist()
    assert len(futures_of(x)) == 4
    assert not wait(x).not_done
    assert int(x.sum().compute()) == 820
    y, z = dask.persist(da.ones(10, chunks=5), delayed(_where_computed)(6))
    assert len(futures_of(y)) == 2 and len(futures_of(z)) == 1
    assert z.compute()[1] != os.getpid()


def test_dask_imported_after_the_executor_opened_runs_on_the_cluster(module_cluster):
    program = textwrap.dedent(f"""
        import os, sys
        from dist_client import Executor
        e = Executor({module_cluster.address!r})
        assert "dask" not in sys.modules
        import dask, dask.array as da
        x = e.persist(da.arange(40, chunks=10) + 1)  # its graph holds the cluster's futures
        assert int(x.sum().compute()) == 820
        where = dask.delayed(os.getpid)().compute()
        assert where != os.getpid(), "computed here, not on the cluster"
        assert dask.config.get("dataframe.shuffle.method") == "tasks"
        e.close()
        assert dask.config.get("scheduler", None) is None
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_the_last_executor_closed_leaves_the_scheduler_unset(module_cluster):
    with dask.config.set(scheduler=None):
        # The module's executor is open: the count goes 2 -> 1 and the setting stays.
        with Executor(module_cluster.address):
            pass
        assert dask.config.get("scheduler", None) is None  # set inside, unset here
    assert dask.config.get("scheduler") is not None  # the module's executor's, back


@pytest.mark.parametrize("build", [lambda df: df, lambda df: df + 1, lambda df: df.shuffle("k")],
                         ids=["from-pandas", "elementwise", "shuffle"])
def test_a_persisted_dataframe_computes_from_its_futures(e, build):
    """A persisted dataframe's graph holds futures under tuple keys; computing it (or building
    on it) reads them, whatever the scheduler call."""
    frame = pd.DataFrame({"k": np.arange(400) % 13, "v": np.arange(400)})
    persisted = e.persist(build(dd.from_pandas(frame, npartitions=4)))
    expected = build(dd.from_pandas(frame, npartitions=4)).compute(scheduler="sync")
    for result in (persisted.compute(scheduler=e.get), e.compute(persisted).result(timeout=60),
                   (persisted.v.sum() * 1).compute(scheduler=e.get)):
        if isinstance(result, pd.DataFrame):
            pd.testing.assert_frame_equal(result.sort_values("v"), expected.sort_values("v"))
        else:
            assert result == expected.v.sum()


class _AppendingTarget:
    """A store target that appends each region it is given to a file, from the workers."""

    def __init__(self, path):
        self.path, self.shape, self.dtype = path, (20,), np.dtype("f8")

    def __setitem__(self, region, value):
        with open(self.path, "a") as file:
            file.write(f"{region[0].start} {value.sum()}\n")


def test_store_takes_dists_lock_to_serialise_writers_across_workers(e, tmp_path):
    """The README's advice for ``store``/``to_hdf`` into one file: dist's ``Lock``, which a
    task holds cluster-wide (dask's ``lock=True`` holds within one process only)."""
    from dist_client import Lock
    path = tmp_path / "written"
    da.store(da.ones(20, chunks=5), _AppendingTarget(str(path)), lock=Lock("store-" + e.id))
    assert sorted(path.read_text().splitlines()) == sorted(f"{i} 5.0" for i in (0, 5, 10, 15))


def _divide_by_zero():
    return _inner_zero() + 1


def _inner_zero():
    return 1 / 0


def test_a_tasks_error_from_compute_shows_no_frames_of_dist_as_dask_shortens_its_own(e):
    """dask shortens the traceback of an error ``compute`` raises, leaving out its
    own modules and dask.distributed's client and worker: dist's are left out likewise, and
    dask's setting is as it was once the last executor closes."""
    import re
    import traceback

    for run in (lambda: dask.compute(delayed(_divide_by_zero)()),
                lambda: delayed(_divide_by_zero)().compute()):
        with pytest.raises(ZeroDivisionError) as raised:
            run()
        files = [frame.f_code.co_filename
                 for frame, _ in traceback.walk_tb(raised.value.__traceback__)]
        # (dask keeps the last frame whatever it is: where the error was raised here, or the
        # task's own where the exception brought the worker's frames)
        assert not [f for f in files[:-1] if re.search("dist_(client|protocol|worker)", f)]
    from dist_client.dask_defaults import DIST_FRAMES
    assert set(DIST_FRAMES) <= set(dask.config.get("admin.traceback.shorten"))
