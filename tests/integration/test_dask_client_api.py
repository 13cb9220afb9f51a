"""Code written for dask.distributed's ``Client`` runs on an ``Executor`` and gives the same
answers: the keywords of ``submit``/``map``/``gather``/``scatter``/``compute``/``persist`` as
dask names and places them, ``await wait(...)`` with an asynchronous executor, the calls of
``run``, ``upload_file`` and ``Queue.get`` as dask takes them."""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import io
import os
import threading
import time

import pytest
from dist_client import (Executor, Future, Queue, as_completed, futures_of, get_worker, progress,
                         wait)
from dist_protocol.messages import Submit

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def strict(x):  # takes no keyword: a dist option that reached it would raise TypeError
    return x * 2


def fail(x):
    raise LookupError(x)


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def fail_once(marker):
    """Fails the first time (it leaves ``marker`` behind), then succeeds."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return "second attempt"


@pytest.fixture
def e(module_cluster):
    with module_cluster.executor() as executor:
        yield executor


def _submits_sent(executor):
    """The sizes of the ``Submit`` messages ``executor`` sends from now on."""
    sizes: list[int] = []
    send = executor.core.send

    def counting(*messages):
        sizes.extend(len(m.tasks) for m in messages if isinstance(m, Submit))
        return send(*messages)
    executor.core.send = counting
    return sizes


Point = collections.namedtuple("Point", "x y")


def test_futures_inside_namedtuples_give_their_values_as_in_dask(e):
    """A future inside a namedtuple reached the task as the Future itself, and ``gather``
    gave it back unread; dask reads namedtuples as it reads tuples."""
    one = e.submit(inc, 0)
    assert e.submit(lambda p: p, Point(one, [one])).result() == Point(1, [1])
    assert e.gather(e.map(lambda p: p.x + p.y, [Point(one, 1), Point(3, one)])) == [2, 4]
    assert e.submit(lambda points: points, points=[Point(one, 2)]).result() == [Point(1, 2)]
    gathered = e.gather({"p": Point(one, "s")})
    assert gathered == {"p": Point(1, "s")} and type(gathered["p"]) is Point


def test_fifo_timeout_and_batch_size_are_options_not_arguments(e):
    assert e.submit(strict, 1, fifo_timeout="100ms").result(RESULT_TIMEOUT) == 2
    assert e.submit(strict, 2, fifo_timeout=0.5).result(RESULT_TIMEOUT) == 4
    with pytest.raises(ValueError, match="fifo_timeout"):
        e.submit(strict, 3, fifo_timeout="soon")
    sizes = _submits_sent(e)
    futures = e.map(strict, range(10), batch_size=4, fifo_timeout="1s")
    assert e.gather(futures, timeout=RESULT_TIMEOUT) == [2 * i for i in range(10)]
    assert sizes == [4, 4, 2]
    with pytest.raises(ValueError, match="batch_size"):
        e.map(strict, range(3), batch_size=0)


def test_gather_and_scatter_take_direct_and_dasks_argument_order(e):
    worker = sorted(e.nthreads())[1]
    futures = e.scatter([10, 20], [worker], direct=True)  # workers is dask's second argument
    assert list(e.who_has(futures).values()) == [[worker], [worker]]
    assert e.gather(futures, direct=True) == [10, 20]
    assert e.gather(futures, "raise", False) == [10, 20]
    assert e.scatter({"x": 1}, direct=False)["x"].result(RESULT_TIMEOUT) == 1
    with pytest.raises(TypeError, match="direct"):
        e.gather(futures, direct="yes")


def test_compute_takes_dasks_options(e, tmp_path):
    dask = pytest.importorskip("dask")
    x = dask.delayed(inc)(1)
    worker = sorted(e.nthreads())[0]
    future = e.compute(x, workers=[worker], optimize_graph=False, priority=5,
                       fifo_timeout="100ms")
    assert future.result(RESULT_TIMEOUT) == 2
    assert e.who_has(future) == {future.key: [worker]}
    flaky = dask.delayed(fail_once)(str(tmp_path / "marker"))
    assert e.compute(flaky, retries=1).result(RESULT_TIMEOUT) == "second attempt"
    assert e.compute([x, flaky], sync=True, retries=1) == [2, "second attempt"]


def test_compute_traverses_containers_as_dask_does(e):
    dask = pytest.importorskip("dask")
    x, y = dask.delayed(inc)(1), dask.delayed(inc)(2)
    as_dict = e.compute({"a": x, "b": [y, 7]})
    assert as_dict.result(RESULT_TIMEOUT) == {"a": 2, "b": [3, 7]}
    single, both, plain = e.compute([x, [x, y], 5])
    assert single.result(RESULT_TIMEOUT) == 2
    assert both.result(RESULT_TIMEOUT) == [2, 3]
    assert plain == 5
    untouched = e.compute([x, [y]], traverse=False)[1]
    assert untouched[0] is y
    assert e.compute({x, y}, sync=True) in ([2, 3], [3, 2])


def test_compute_of_a_container_holding_dask_dataframes_gives_it_with_their_values(e):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd
    frame = pd.DataFrame({"a": range(10), "b": list("xyxyxyxyxy")})
    ddf = dd.from_pandas(frame, npartitions=3)
    # (dask.delayed of the dict, as dask.distributed's compute wraps it, raised a bare
    # NotImplementedError: an unoptimized dataframe expression cannot say its keys.)
    summary = e.compute({"total": ddf.a.sum(), "by": [ddf.groupby("b").a.max(), 4]})
    got = summary.result(RESULT_TIMEOUT)
    assert got["total"] == 45 and got["by"][1] == 4
    assert got["by"][0].to_dict() == {"x": 8, "y": 9}
    assert summary.key.startswith("dict-")
    assert e.compute(iter([ddf.a.max(), (ddf.a.min(),)]), sync=True) == [9, (0,)]


def test_persist_takes_dasks_options(e, tmp_path):
    dask = pytest.importorskip("dask")
    worker = sorted(e.nthreads())[1]
    kept = e.persist(dask.delayed(inc)(40), workers=[worker], priority=1, fifo_timeout="1s")
    [future] = futures_of(kept)
    assert future.result(RESULT_TIMEOUT) == 41
    assert e.who_has(future) == {future.key: [worker]}
    flaky = e.persist(dask.delayed(fail_once)(str(tmp_path / "marker")), retries=1)
    assert flaky.compute() == "second attempt"


def test_await_wait_with_an_asynchronous_executor(module_cluster):
    async def main():
        async with Executor(module_cluster.address, asynchronous=True) as ae:
            futures = ae.map(inc, range(4))
            done, not_done = await wait(futures)
            assert len(done) == 4 and not not_done
            first = await wait(futures + [ae.submit(sleep_then, 3, None)], timeout=0.2)
            assert len(first.done) == 4 and len(first.not_done) == 1
            return await ae.gather(futures)
    assert asyncio.run(main()) == [1, 2, 3, 4]


def test_wait_and_as_completed_take_other_executors_futures(e):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        mine, theirs = e.submit(inc, 1), pool.submit(inc, 2)
        done, not_done = wait([mine, theirs], timeout=RESULT_TIMEOUT)
        assert done == {mine, theirs} and not not_done
        failed = pool.submit(fail, "theirs")
        pairs = dict(as_completed([e.submit(inc, 3), pool.submit(inc, 4), failed],
                                  with_results=True, raise_errors=False,
                                  timeout=RESULT_TIMEOUT))
        assert sorted(v for v in pairs.values() if isinstance(v, int)) == [4, 5]
        kind, error, _ = pairs[failed]  # as dask gives a failed future: its exc_info
        assert kind is LookupError and isinstance(error, LookupError)
        with pytest.raises(LookupError):
            list(as_completed([failed], with_results=True))


def fail_in(pid):
    if os.getpid() == pid:
        raise KeyError("here")
    return "ok"


def test_run_on_error_as_dask_takes_it(e):
    pids = e.run(os.getpid)
    first, second = sorted(pids)
    with pytest.raises(ValueError, match="on_error"):
        e.run(os.getpid, on_error="skip")
    returned = e.run(fail_in, pids[first], on_error="return")
    assert returned[second] == "ok"
    assert isinstance(returned[first], KeyError)
    assert e.run(fail_in, pids[first], on_error="ignore") == {second: "ok"}
    with pytest.raises(KeyError):
        e.run(fail_in, pids[first])


async def async_inc(x):
    await asyncio.sleep(0.01)
    return x + 1


async def async_fail(x):
    await asyncio.sleep(0)
    raise LookupError(x)


def test_async_def_functions_run_to_their_value_as_on_dasks_workers(e):
    assert e.submit(async_inc, 1).result(RESULT_TIMEOUT) == 2
    assert e.gather(e.map(async_inc, range(4))) == [1, 2, 3, 4]
    with pytest.raises(LookupError):
        e.submit(async_fail, 3).result(RESULT_TIMEOUT)
    # each waits on its pool thread's own loop: as many at once as the cluster has threads
    assert e.gather(e.map(async_inc, range(100))) == list(range(1, 101))
    assert set(e.run(async_inc, 5).values()) == {6}


def worker_seen(tag, dask_worker):
    return tag, dask_worker.address


def test_run_passes_dask_worker_and_takes_dasks_wait_and_nanny(e):
    seen = e.run(worker_seen, "t")
    assert seen == {address: ("t", address) for address in seen} and len(seen) == 2
    assert set(e.run(lambda *, dask_worker: dask_worker.nthreads).values()) == {
        next(iter(e.nthreads().values()))}
    # given by the caller, it is the caller's
    assert set(e.run(lambda dask_worker: dask_worker, dask_worker="given").values()) == {
        "given"}
    ran = Queue("ran-" + e.id, executor=e)
    assert e.run(put_pid, ran.name, wait=False) is None
    # the calls run though the caller kept nothing of them
    assert len({ran.get(timeout=RESULT_TIMEOUT) for _ in seen}) == len(seen)
    assert e.run(os.getpid, nanny=False).keys() == seen.keys()
    with pytest.raises(ValueError, match="nanny"):
        e.run(os.getpid, nanny=True)


def put_pid(queue_name):
    Queue(queue_name).put(os.getpid())


def environment_variable(name):
    return os.environ.get(name)


def test_upload_file_load_false_only_saves(e, tmp_path):
    module = tmp_path / "uploaded_side_effect.py"
    module.write_text("import os\nos.environ['UPLOADED_LOADED'] = 'yes'\nVALUE = 7\n")
    e.upload_file(module, load=False)
    assert set(e.run(environment_variable, "UPLOADED_LOADED").values()) == {None}
    e.upload_file(module)
    assert set(e.run(environment_variable, "UPLOADED_LOADED").values()) == {"yes"}
    assert set(e.run(lambda: __import__("uploaded_side_effect").VALUE).values()) == {7}


def test_queue_get_batch(e):
    queue = Queue("batches-" + e.id, executor=e)
    assert queue.get(batch=True) == []
    for item in range(5):
        queue.put(item)
    assert queue.get(batch=2) == [0, 1]
    assert queue.get(batch=True) == [2, 3, 4]
    queue.put(e.submit(inc, 10))
    queue.put(11)
    with pytest.raises(TimeoutError):
        queue.get(batch=3, timeout=0.2)
    # Nothing is lost: what the timed-out get took went back, futures' data too.
    first, second = queue.get(batch=2, timeout=RESULT_TIMEOUT)
    assert first.result(RESULT_TIMEOUT) == 11 and second == 11 or \
        second.result(RESULT_TIMEOUT) == 11 and first == 11
    with pytest.raises(ValueError, match="batch"):
        queue.get(batch=-1)


def test_async_executor_upload_file_run_and_queue_batch(module_cluster, tmp_path):
    module = tmp_path / "uploaded_async.py"
    module.write_text("VALUE = 8\n")

    async def main():
        async with Executor(module_cluster.address, asynchronous=True) as ae:
            await ae.upload_file(module)
            values = await ae.run(lambda: __import__("uploaded_async").VALUE)
            queue = Queue("batches-" + ae.id, executor=ae)
            await queue.put(1)
            await queue.put(2)
            return set(values.values()), await queue.get(batch=True)
    assert asyncio.run(main()) == ({8}, [1, 2])


def test_dasks_kinds_of_keys_work_and_others_are_refused_harmlessly(e):
    pending = e.submit(sleep_then, 0.5, "unharmed", pure=False)
    tuple_key = e.submit(inc, 1, key=("x", 1))
    assert tuple_key.result(RESULT_TIMEOUT) == 2
    assert e.submit(inc, 2, key=7).result(RESULT_TIMEOUT) == 3
    assert e.gather(e.map(inc, [1, 2], key=[("y", 0), ("y", 1)])) == [2, 3]
    scattered = e.scatter({("z", 0): 10, "w": 20})
    assert set(scattered) == {("z", 0), "w"}
    assert e.gather(scattered) == {("z", 0): 10, "w": 20}
    for bad in (object(), [1], ("x", None)):
        with pytest.raises(TypeError, match="key"):
            e.submit(inc, 1, key=bad)
    with pytest.raises(TypeError, match="key"):
        e.map(inc, [1], key=[{}])
    assert pending.result(RESULT_TIMEOUT) == "unharmed"
    assert e.status == "running"
    prefixed = e.map(inc, [1, 2], key="mine", pure=False)
    assert all(f.key.startswith("mine-") for f in prefixed)
    assert prefixed[0].key != prefixed[1].key


def test_wait_progress_who_has_and_cancel_take_persisted_collections(e):
    da = pytest.importorskip("dask.array")
    array = e.persist(da.arange(40, chunks=10) + 1)
    bag = e.persist(pytest.importorskip("dask.bag").from_sequence(range(6), npartitions=3))
    done, not_done = wait(array)
    assert len(done) == 4 and not not_done
    done, not_done = wait([array, bag, e.submit(inc, 1)])
    assert len(done) == 4 + 3 + 1 and not not_done
    assert len(wait({"a": e.submit(inc, 2)}).done) == 1
    shown = io.StringIO()
    progress(bag, file=shown)
    assert "3/3" in shown.getvalue()
    assert len(e.who_has(array)) == 4
    assert all(e.who_has(array).values())
    unfinished = e.persist(pytest.importorskip("dask").delayed(sleep_then)(5, None))
    e.cancel(unfinished)
    assert [f.status for f in futures_of(unfinished)] == ["cancelled"]
    assert int(e.compute(array.sum()).result(RESULT_TIMEOUT)) == sum(range(1, 41))


def test_workers_may_be_named_by_host_as_in_dask(e):
    host = "127.0.0.1"  # every worker of the test cluster is there
    assert e.submit(inc, 41, workers=host).result(RESULT_TIMEOUT) == 42
    assert e.submit(inc, 42, workers=[host], pure=False).result(RESULT_TIMEOUT) == 43
    [scattered] = e.scatter([5], workers=host)
    assert scattered.result(RESULT_TIMEOUT) == 5
    everywhere = e.run(os.getpid, workers=[host])
    assert sorted(everywhere) == sorted(e.nthreads())  # by address, as dask keys them
    name = e.scheduler_info()["workers"][sorted(e.nthreads())[0]]["name"]
    assert list(e.run(os.getpid, workers=[name])) == [sorted(e.nthreads())[0]]
    with pytest.raises(ValueError, match="nobody"):
        e.run(os.getpid, workers=["nobody:1"])


def test_retry_runs_failed_tasks_again_as_dask_does(e, tmp_path):
    first = e.submit(fail_once, str(tmp_path / "first"))
    assert isinstance(first.exception(RESULT_TIMEOUT), RuntimeError)
    first.retry()
    assert first.result(RESULT_TIMEOUT) == "second attempt"
    # A dependent failed because its input did: retrying it runs the input again too.
    source = e.submit(fail_once, str(tmp_path / "second"))
    reader = e.submit(str.upper, source)
    assert isinstance(reader.exception(RESULT_TIMEOUT), RuntimeError)
    e.retry([reader])
    assert reader.result(RESULT_TIMEOUT) == "SECOND ATTEMPT"
    done = e.submit(inc, 1)
    assert done.result(RESULT_TIMEOUT) == 2
    done.retry()  # finished: nothing happens
    assert done.result(RESULT_TIMEOUT) == 2


def test_retry_with_an_asynchronous_executor(module_cluster, tmp_path):
    async def main():
        async with Executor(module_cluster.address, asynchronous=True) as ae:
            future = ae.submit(fail_once, str(tmp_path / "marker"))
            try:
                await future
            except RuntimeError:
                pass
            await ae.retry(future)
            return await future
    assert asyncio.run(main()) == "second attempt"


def test_get_with_sync_false_gives_futures_as_dask_does(e):
    graph = {"a": (inc, 1), "b": (inc, "a"), "c": (add, "a", "b")}
    futures = e.get(graph, ["b", ["c"]], sync=False)
    assert isinstance(futures[0], Future) and isinstance(futures[1][0], Future)
    assert e.gather(futures) == [3, [5]]
    assert e.get(graph, "c", sync=False).result(RESULT_TIMEOUT) == 5
    assert e.get(graph, ["b", "c"]) == (3, 5)  # values, as dask's schedulers give them


def test_close_takes_a_timeout_as_dask_does(module_cluster):
    executor = module_cluster.executor()
    with pytest.raises(ValueError, match="timeout"):
        executor.close(timeout=-1)
    assert executor.status == "running"
    executor.close(timeout=5)
    assert executor.status == "closed"

    async def main():
        ae = await Executor(module_cluster.address, asynchronous=True)
        await ae.close(timeout=5)
        return ae.status
    assert asyncio.run(main()) == "closed"


def describe_worker(_=None):
    worker = get_worker()
    return {"address": worker.address, "name": worker.name, "id": worker.id,
            "nthreads": worker.nthreads, "memory_limit": worker.memory_limit,
            "local_directory": os.path.isdir(worker.local_directory),
            "scheduler": worker.scheduler.address}


def keep_in_worker_data(name, value):
    get_worker().data[name] = value
    return get_worker().id


def read_worker_data(name):
    try:
        return get_worker().data[name]
    except KeyError as exc:
        return str(exc)


def test_get_worker_in_a_task_describes_its_worker_as_dasks_does(e):
    with pytest.raises(ValueError, match="get_worker.*no task is running"):
        get_worker()
    table = e.scheduler_info()["workers"]
    seen = e.run(describe_worker)
    assert set(seen) == set(table)
    for address, worker in seen.items():
        assert worker["address"] == address
        assert worker["name"] == table[address]["name"]
        assert worker["nthreads"] == table[address]["nthreads"] == 2
        assert worker["memory_limit"] == (table[address]["memory_limit"] or None)
        assert worker["local_directory"]
        assert worker["scheduler"] == e.scheduler.address  # as dask code reads it
    assert len({worker["id"] for worker in seen.values()}) == len(seen)
    address = next(iter(seen))
    on_one = e.map(describe_worker, range(4), workers=[address], pure=False)
    assert {w["id"] for w in e.gather(on_one)} == {seen[address]["id"]}


def test_get_worker_data_keeps_what_tasks_put_there_not_results(e):
    first, second = sorted(e.nthreads())
    future = e.submit(inc, 1, workers=[first])
    assert future.result(RESULT_TIMEOUT) == 2
    kept = e.submit(keep_in_worker_data, "model", [1, 2, 3], workers=[first], pure=False)
    kept.result(RESULT_TIMEOUT)
    assert e.submit(read_worker_data, "model", workers=[first],
                    pure=False).result(RESULT_TIMEOUT) == [1, 2, 3]
    elsewhere = e.submit(read_worker_data, "model", workers=[second], pure=False)
    assert "not the worker's stored results" in elsewhere.result(RESULT_TIMEOUT)
    # A result held on that worker is not in it either: the mapping is the tasks' own.
    assert "not the worker's stored results" in e.submit(
        read_worker_data, future.key, workers=[first], pure=False).result(RESULT_TIMEOUT)


def imported_value(module):
    return __import__(module).VALUE


@pytest.mark.cluster(n_workers=1)
def test_upload_file_reaches_workers_that_join_later_as_dasks_does(cluster, tmp_path):
    e = cluster.executor()
    module = tmp_path / "uploaded_for_later.py"
    module.write_text("VALUE = 'first'\n")
    e.upload_file(module)
    late = cluster.add_worker()
    cluster.wait_for_workers(e, 2)
    on_late = e.submit(imported_value, "uploaded_for_later", workers=[late.name], pure=False)
    assert on_late.result(RESULT_TIMEOUT) == "first"
    # The same name replaces the file, for the workers present and those to come.
    module.write_text("VALUE = 'second'\n")
    e.upload_file(module)
    later = cluster.add_worker()
    cluster.wait_for_workers(e, 3)
    assert set(e.run(imported_value, "uploaded_for_later").values()) == {"second"}
    assert e.submit(imported_value, "uploaded_for_later", workers=[later.name],
                    pure=False).result(RESULT_TIMEOUT) == "second"


@pytest.mark.cluster(n_workers=1, nanny=True)
def test_uploaded_files_are_installed_again_in_restarted_worker_processes(cluster, tmp_path):
    e = cluster.executor()
    module = tmp_path / "uploaded_before_restart.py"
    module.write_text("VALUE = 'kept'\n")
    e.upload_file(module)
    pids = e.run(os.getpid)
    e.restart(timeout=60)
    assert e.run(os.getpid) != pids  # new processes, which got the file from the center
    assert set(e.run(imported_value, "uploaded_before_restart").values()) == {"kept"}


def test_upload_file_refuses_a_file_the_center_would_not_keep(e, tmp_path):
    big = tmp_path / "uploaded_too_big.py"
    big.write_bytes(b"#" * (64 * 2**20 + 1))
    with pytest.raises(ValueError, match="at most"):
        e.upload_file(big)
    with pytest.raises(ModuleNotFoundError):  # sent to no worker either
        e.run(imported_value, "uploaded_too_big")


@pytest.mark.cluster(n_workers=2, heartbeat_timeout=120)
def test_restart_raises_on_its_timeout_and_need_not_wait_for_workers(cluster, wait_until):
    e = cluster.executor()
    first, second = cluster.workers
    kept = e.submit(keep_in_worker_data, "model", 1, pure=False).result(RESULT_TIMEOUT)
    future = e.submit(inc, 1)
    future.result(RESULT_TIMEOUT)
    second.suspend()  # told to restart, it cannot come back until resumed
    try:
        with pytest.raises(TimeoutError, match="1 of the 2 workers"):
            e.restart(timeout=1)
    finally:
        second.resume()
    assert future.cancelled()
    cluster.wait_for_workers(e, 2)
    # A restarted worker forgets what tasks kept there, and is another worker to them.
    ids = {w["id"] for w in e.run(describe_worker).values()}
    assert kept not in ids
    assert set(e.run(read_worker_data, "model").values()) != {1}

    second.suspend()
    try:
        e.restart(wait_for_workers=False)  # returns with a worker still away
        assert len(e.nthreads()) <= 1
    finally:
        second.resume()
    e.wait_for_workers(2, timeout=RESULT_TIMEOUT)
    assert e.submit(inc, 10).result(RESULT_TIMEOUT) == 11


def test_cancel_leaves_other_clients_keys_unless_forced(e, module_cluster, tmp_path):
    other = module_cluster.executor()
    marker = str(tmp_path / "go")
    try:
        mine = e.submit(wait_for_file, marker, 1)
        theirs = other.submit(wait_for_file, marker, 1)  # the same key
        after = other.submit(inc, theirs)
        other.who_has([after])  # (a round trip: the center has both clients' tasks)
        assert mine.key == theirs.key
        e.cancel(mine)
        assert mine.cancelled() and not theirs.done()
        mine = e.submit(wait_for_file, marker, 1)
        e.cancel(mine, force=True)
        wait([theirs, after], timeout=RESULT_TIMEOUT)
        assert theirs.cancelled() and after.cancelled()
    finally:
        open(marker, "w").close()
        other.close()


def test_cancel_takes_the_tasks_reading_the_key_with_it_as_dasks(e, tmp_path):
    """Cancelling the root of a pipeline cancels what reads it, directly or not: the futures
    settle as cancelled (callbacks fire) and the center lets go of the tasks."""
    marker = str(tmp_path / "go")
    try:
        root = e.submit(wait_for_file, marker, 1, pure=False)
        middle = e.submit(inc, root)
        leaf = e.submit(add, middle, root)
        called = concurrent.futures.Future()
        leaf.add_done_callback(called.set_result)
        e.cancel(root)
        wait([middle, leaf], timeout=RESULT_TIMEOUT)
        for future in (root, middle, leaf):
            assert future.cancelled() and future.done() and future.status == "cancelled"
            with pytest.raises(concurrent.futures.CancelledError):
                future.result(timeout=RESULT_TIMEOUT)
        assert called.result(timeout=RESULT_TIMEOUT) is leaf
        assert not any(e.who_has([root, middle, leaf]).values())
    finally:
        open(marker, "w").close()


def test_gather_of_an_iterator_gathers_as_it_is_read(e):
    """As dask's: gather of an iterator is an iterator of the values, so a stream of futures
    flows through. It was read whole first, which an endless stream never ends."""
    def stream():
        yield from (e.submit(inc, i, pure=False) for i in range(3))
        raise AssertionError("gather read the iterator past the values taken")

    values = e.gather(stream())
    assert [next(values) for _ in range(3)] == [1, 2, 3]
    failed = iter([e.submit(fail, 1), e.submit(inc, 4)])
    assert list(e.gather(failed, errors="skip")) == [5]


def test_cancel_takes_dasks_reason_and_msg(e, tmp_path):
    """dask code passes ``reason=`` and ``msg=`` to ``cancel`` (and ``force=`` to
    ``Future.cancel``): each was a ``TypeError``. They go into the ``CancelledError``."""
    marker = str(tmp_path / "go")
    try:
        one = e.submit(wait_for_file, marker, 1, pure=False)
        two = e.submit(wait_for_file, marker, 2, pure=False)
        assert one.cancel(reason="superseded", msg="a newer run started", force=True)
        e.cancel([two], reason="timed out")
        with pytest.raises(concurrent.futures.CancelledError,
                           match="was cancelled: superseded\na newer run started"):
            one.result(RESULT_TIMEOUT)
        with pytest.raises(concurrent.futures.CancelledError, match="cancelled: timed out$"):
            two.result(RESULT_TIMEOUT)
    finally:
        open(marker, "w").close()


def test_a_pipeline_submitted_again_right_after_its_cancel_is_new_work(e, tmp_path):
    """As dask's ``cancel``, which returns once the scheduler has cancelled: the tasks
    reading the cancelled key are cancelled by then, so the same pure pipeline submitted at
    once gets fresh futures that run, not the old ones the center's answer would cancel."""
    marker = str(tmp_path / "go")
    root = e.submit(wait_for_file, marker, 1)
    leaf = e.submit(inc, root)
    e.cancel(root)
    assert leaf.cancelled()
    open(marker, "w").close()
    again_root = e.submit(wait_for_file, marker, 1)
    again_leaf = e.submit(inc, again_root)
    assert again_leaf.key == leaf.key
    assert again_leaf.result(RESULT_TIMEOUT) == 2 and not again_leaf.cancelled()


def test_an_async_cancel_is_done_when_the_center_has_answered(module_cluster, tmp_path):
    marker = str(tmp_path / "go")

    async def main():
        async with Executor(module_cluster.address, asynchronous=True) as ae:
            root = ae.submit(wait_for_file, marker, 1)
            leaf = ae.submit(inc, root)
            await ae.cancel(root)
            assert leaf.cancelled()
            open(marker, "w").close()
            return await ae.submit(inc, ae.submit(wait_for_file, marker, 1))
    assert asyncio.run(main()) == 2


def test_cancel_leaves_what_another_client_holds_to_go_on(e, module_cluster, tmp_path):
    """As dask's: a key another client holds goes on, with the caller's tasks reading it;
    a task reading the cancelled key that another client holds goes on, with its input."""
    other = module_cluster.executor()
    marker = str(tmp_path / "go")
    try:
        shared = e.submit(wait_for_file, marker, 1)
        theirs = other.submit(wait_for_file, marker, 1)  # the same key
        mine_reading_shared = e.submit(inc, shared)

        root = e.submit(wait_for_file, marker, 10)
        their_root = other.submit(wait_for_file, marker, 10)  # the same key, then let go of
        their_reader = other.submit(inc, their_root)
        their_root.release()
        mine_reading_root = e.submit(add, root, 5)
        other.who_has([their_reader])  # (a round trip: the center has the release)
        e.who_has([mine_reading_root])  # (and the other client's tasks before the cancel)

        e.cancel([shared, root])
        wait([mine_reading_root], timeout=RESULT_TIMEOUT)
        assert mine_reading_root.cancelled()
        open(marker, "w").close()
        assert theirs.result(timeout=RESULT_TIMEOUT) == 1
        assert mine_reading_shared.result(timeout=RESULT_TIMEOUT) == 2
        assert their_reader.result(timeout=RESULT_TIMEOUT) == 11
    finally:
        open(marker, "w").close()
        other.close()


def test_a_client_without_cancel_dependents_keeps_the_tasks_reading_the_key(
        module_cluster, tmp_path, monkeypatch):
    """An older client, that did not announce the feature: its tasks reading a cancelled key
    go on as before, and settle."""
    from dist_protocol.features import FEATURES
    monkeypatch.setenv("DIST_PROTOCOL_FEATURES",
                       ",".join(name for name in FEATURES if name != "cancel-dependents"))
    older = module_cluster.executor()
    marker = str(tmp_path / "go")
    try:
        root = older.submit(wait_for_file, marker, 1, pure=False)
        reader = older.submit(inc, root)
        older.cancel(root)
        assert root.cancelled()
        open(marker, "w").close()
        assert reader.result(timeout=RESULT_TIMEOUT) == 2
    finally:
        open(marker, "w").close()
        older.close()


def test_the_concurrent_futures_view_cancels_as_the_executor_does(e, tmp_path):
    """``get_executor()``'s futures are the executor's: cancelling one takes the view's tasks
    reading it with it too; a future done stays done (``cancel()`` is False for it)."""
    view = e.get_executor()
    marker = str(tmp_path / "go")
    try:
        done = view.submit(inc, 1)
        assert done.result(timeout=RESULT_TIMEOUT) == 2
        assert done.cancel() is False and not done.cancelled()
        root = view.submit(wait_for_file, marker, 1)
        reader = view.submit(inc, root)
        e.cancel(root)
        wait([reader], timeout=RESULT_TIMEOUT)
        assert reader.cancelled() and done.result(timeout=RESULT_TIMEOUT) == 2
    finally:
        open(marker, "w").close()


def wait_for_file(path, value):
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def block_of(i):
    return bytes([i % 256]) * 100_000


@pytest.mark.cluster(n_workers=2)
def test_rebalance_evens_out_the_bytes_workers_hold_as_dasks_does(cluster):
    e = cluster.executor()
    first, second = sorted(e.nthreads())
    blocks = e.map(block_of, range(8), workers=[first])
    wait(blocks, timeout=RESULT_TIMEOUT)
    assert all(holders == [first] for holders in e.who_has(blocks).values())
    e.rebalance()
    held = e.has_what()
    assert len(held[first]) == len(held[second]) == 4
    assert not set(held[first]) & set(held[second])  # moved, not copied
    assert e.gather(blocks) == [block_of(i) for i in range(8)]

    # Only the keys of the futures given, and only between the workers named.
    more = e.map(block_of, range(8, 12), workers=[first])
    wait(more, timeout=RESULT_TIMEOUT)
    e.rebalance(more[:1], workers=[first, second])
    assert e.who_has(more[:1])[more[0].key] == [second]
    assert all(e.who_has(more)[f.key] == [first] for f in more[1:])
    with pytest.raises(ValueError, match="no worker"):
        e.rebalance(workers=["nobody"])
    failed = e.submit(fail, 1)
    with pytest.raises(KeyError, match="could not move"):
        e.rebalance([failed])


def test_scheduler_info_counts_and_n_workers_as_dasks(e):
    info = e.scheduler_info()
    threads = e.nthreads()
    assert (info["n_workers"], info["total_threads"]) == (len(threads), sum(threads.values()))
    assert info["total_memory"] == sum(w["memory_limit"] or 0 for w in info["workers"].values())
    assert e.scheduler_info(n_workers=-1)["workers"].keys() == threads.keys()
    one = e.scheduler_info(n_workers=1)
    assert len(one["workers"]) == 1 and one["n_workers"] == len(threads)


def test_get_versions_as_dask_names_it(e):
    versions = e.get_versions(check=True)
    assert versions["scheduler"] == versions["center"]
    assert versions["workers"].keys() == e.nthreads().keys()
    with_packages = e.get_versions(packages=["pytest", "no-such-distribution"])
    import pytest as here
    for env in [with_packages["client"], *with_packages["workers"].values()]:
        assert env["packages"]["no-such-distribution"] is None
        assert env["packages"]["pytest"] == here.__version__
        assert "dist-client" in env["packages"] or "dist_client" in env["packages"]


def test_nthreads_and_has_what_of_the_workers_named_as_dasks(e):
    first, second = sorted(e.nthreads())
    held = e.scatter(5, workers=[first])
    assert e.nthreads(workers=[second]) == {second: e.nthreads()[second]}
    assert e.nthreads(workers=first).keys() == {first}
    assert e.has_what(workers=[first]) == {first: [held.key]}
    assert e.has_what(workers=[second]) == {second: []}
    assert e.has_what()[first] == [held.key]


def fail_later(x):
    time.sleep(0.2)
    raise LookupError(x)


def test_a_tasks_error_from_result_or_gather_leaves_dists_frames_out(e):
    """As dask's client shortens these tracebacks to the caller's frames and the task's: the
    frames of dist's client are left out but for the method called (and the frame that
    raised, which is always kept)."""
    import traceback
    for get in (lambda future: future.result(RESULT_TIMEOUT), lambda future: e.gather([future]),
                lambda future: e.gather({"x": future}), lambda future: e.gather(future)):
        future = e.submit(fail_later, 1, pure=False)
        with pytest.raises(LookupError) as raised:
            get(future)
        files = [frame.f_code.co_filename
                 for frame, _ in traceback.walk_tb(raised.value.__traceback__)]
        ours = [name for name in files[:-1] if "dist_client" in name or "dist_protocol" in name]
        assert len(ours) <= 2, files


def test_timeouts_as_dask_writes_them_and_futures_given_as_one(e):
    slow = e.submit(sleep_then, 5, "late", pure=False)
    for wait_for in (lambda: slow.result(timeout="10 ms"), lambda: slow.exception("10ms"),
                     lambda: e.gather([slow], timeout="0.01s"),
                     lambda: list(as_completed([slow], timeout="10ms"))):
        with pytest.raises(TimeoutError):
            wait_for()
    assert wait([slow], timeout="10ms").not_done == {slow}
    assert e.submit(inc, 1).result(timeout="30s") == 2
    with pytest.raises(ValueError, match="timeout"):
        slow.result(timeout="soon")
    # dask's wait(x, y) mistake: the second future went where the timeout goes
    other = e.submit(inc, 2)
    with pytest.raises(TypeError, match=r"wait\(\[x, y\]\)"):
        wait(slow, other)
    e.cancel([slow])


def div(x, y):
    return x / y


def pid_and(*args, **kwargs):
    return os.getpid(), args, kwargs


def test_recreate_error_locally_raises_where_the_error_began_in_this_process(e):
    zero = e.submit(inc, -1)
    failed = e.submit(div, 1, zero)
    dependent = e.submit(add, e.submit(inc, 1), failed)  # erred because its input did
    wait([dependent])
    assert dependent.status == "error"

    with pytest.raises(ZeroDivisionError) as raised:
        e.recreate_error_locally(dependent)

    assert raised.traceback[-1].name == "div"  # div ran here, on its input's value
    assert dependent.status == failed.status == "error"
    with pytest.raises(ZeroDivisionError):
        e.recreate_error_locally([zero, failed])  # the first erred one of several


def test_recreate_error_locally_refuses_futures_that_did_not_fail(e):
    done = e.submit(inc, 1)
    with pytest.raises(ValueError, match="No errored futures passed"):
        e.recreate_error_locally(done)  # (waited for first: it finishes)


def test_recreate_task_locally_runs_the_task_here_on_its_inputs(e):
    one = e.submit(inc, 0)
    scattered = e.scatter(5)
    result = e.submit(pid_and, [one, one], scattered, label={"x": one})

    assert e.recreate_task_locally(result) == (os.getpid(), ([1, 1], 5), {"label": {"x": 1}})
    assert result.result(RESULT_TIMEOUT)[0] != os.getpid()
    with pytest.raises(ValueError, match="scattered data"):
        e.recreate_task_locally(scattered)


def test_recreate_task_locally_of_a_dask_collection_task(e):
    da = pytest.importorskip("dask.array")
    total = e.compute((da.arange(10, chunks=5) + 1).sum())
    assert e.recreate_task_locally(total) == 55


def test_scheduler_info_says_when_the_center_started_as_dasks(e):
    info = e.scheduler_info()
    started = info["started"]
    assert isinstance(started, float) and 0 < started <= time.time()
    dasks_fields = {"type", "id", "host", "name", "nthreads", "memory_limit", "status",
                    "metrics", "resources", "services", "nanny", "last_seen"}
    for worker in info["workers"].values():
        assert dasks_fields <= worker.keys()
        assert worker["resources"] == {} and worker["nanny"] is None


def test_normalize_collection_reuses_the_futures_this_client_holds(e):
    da = pytest.importorskip("dask.array")
    x = da.arange(10, chunks=5) + 1
    persisted = e.persist(x)
    wait(persisted)

    normalized = e.normalize_collection(x)

    assert {f.key for f in futures_of(normalized)} == {f.key for f in futures_of(persisted)}
    assert list(normalized.compute()) == list(range(1, 11))
    assert e.normalize_collection(da.arange(3, chunks=3)) is not None  # nothing held: as given


def test_nbytes_each_result_held_or_by_name_as_dasks(e):
    incs = e.map(inc, range(3))
    wait(incs)
    sizes = e.nbytes(summary=False)
    assert {f.key for f in incs} <= sizes.keys() and all(sizes[f.key] > 0 for f in incs)
    assert e.nbytes(incs) == {"inc": sum(sizes[f.key] for f in incs)}


def test_dask_client_keywords_and_calls_that_change_nothing_here(module_cluster):
    with module_cluster.executor(direct_to_workers=False) as executor:
        assert executor.direct_to_workers is True  # the center holds no data to pass through
        executor.start()  # started when made, as dask's client is by default
        assert Executor.current() is executor
        assert executor.futures_of([executor.submit(inc, 1)])[0].result(RESULT_TIMEOUT) == 2
    with pytest.raises(TypeError, match="direct_to_workers"):
        module_cluster.executor(direct_to_workers="yes")
    with pytest.raises(RuntimeError, match="cannot start again"):
        executor.start()


def test_what_would_run_code_in_the_center_says_why_not(e):
    with pytest.raises(NotImplementedError, match="never does"):
        e.run_on_scheduler(lambda dask_scheduler: None)
    with pytest.raises(NotImplementedError, match="scheduler plugin"):
        e.register_scheduler_plugin(object())


def test_replicate_onto_chosen_workers_as_dasks(e):
    first, second = sorted(e.nthreads())
    future = e.submit(inc, 1, workers=[first])
    assert future.result(RESULT_TIMEOUT) == 2

    e.replicate([future], n=1, workers=[second])  # one copy there, besides the one on first
    assert sorted(e.who_has([future])[future.key]) == [first, second]
    with pytest.raises(ValueError, match="no worker has"):
        e.replicate([future], workers=["no-such-worker"])


def test_scheduler_plugins_say_why_not(e):
    future = e.submit(inc, 1)
    assert future.client is e

    class Counter:  # a scheduler plugin as dask's register_plugin takes one
        def update_graph(self, scheduler, *args, **kwargs):
            pass

    with pytest.raises(NotImplementedError, match="scheduler plugin.*update_graph"):
        e.register_plugin(Counter())


def wait_for_event(name):
    from dist_client import Event
    Event(name).wait()
    return name


def test_processing_lists_the_keys_each_worker_runs_as_dasks(e, wait_until):
    from dist_client import Event
    assert e.processing() == {address: [] for address in e.nthreads()}
    name = f"processing-{os.getpid()}-{time.monotonic_ns()}"
    running = e.submit(wait_for_event, name)
    try:
        [where] = wait_until(lambda: [address for address, keys in e.processing().items()
                                      if running.key in keys], what="the task processing")
        assert e.processing(workers=[where]) == {where: [running.key]}
    finally:
        Event(name).set()
    assert running.result(RESULT_TIMEOUT) == name


def test_write_scheduler_file_lets_another_executor_find_the_center(e, tmp_path):
    path = str(tmp_path / "scheduler.json")
    e.write_scheduler_file(path)
    with Executor(scheduler_file=path, token=e.token) as other:
        assert other.address == e.address
        assert other.submit(inc, 41).result(RESULT_TIMEOUT) == 42
        with pytest.raises(ValueError, match="scheduler file"):
            other.write_scheduler_file(str(tmp_path / "again.json"))  # as dask's
    with pytest.raises(ValueError, match="scheduler file"):
        e.write_scheduler_file(path)


def test_as_current_makes_an_executor_the_default_within_the_block(module_cluster):
    from dist_client import default_executor
    with module_cluster.executor() as first, module_cluster.executor() as second:
        assert Executor.current() is second  # the most recent
        with first.as_current():
            assert Executor.current() is first and default_executor() is first
            with second.as_current():
                assert default_executor() is second
            assert default_executor() is first
            seen = []
            thread = threading.Thread(target=lambda: seen.append(default_executor()))
            thread.start()
            thread.join(RESULT_TIMEOUT)
            assert seen == [second]  # another thread keeps the most recent
        assert Executor.current() is second


def wait_on(event):
    return event.wait()


def test_gather_and_get_raise_the_first_failure_while_others_still_run_as_dasks(e):
    from dist_client import Event
    gate = Event(executor=e)
    try:
        waiting = e.submit(wait_on, gate)
        failing = e.submit(fail, "x")
        # (the failure comes after a pending key: it is found wherever it is in the list)
        with pytest.raises(LookupError):
            e.gather([waiting, failing], timeout=RESULT_TIMEOUT)
        with pytest.raises(LookupError):
            e.get({"y": (wait_on, gate), "x": (fail, 1)}, ["y", "x"])
        assert not waiting.done()
    finally:
        gate.set()
    # errors="skip" waits for the rest
    assert e.gather([waiting, failing], errors="skip", timeout=RESULT_TIMEOUT) == [True]


def test_scheduler_address_is_the_centers_as_dask_code_reads_it(e, module_cluster):
    assert e.scheduler.address == e.address == module_cluster.address
    assert e.scheduler.address in repr(e)


def test_current_without_global_is_that_of_the_enclosing_block_as_dasks(module_cluster):
    # (opening with dask's words, which code written for dask matches on)
    with pytest.raises(ValueError, match=r"^No clients found: .*allow_global=False"):
        Executor.current(allow_global=False)
    with module_cluster.executor() as outer:
        assert Executor.current(allow_global=False) is outer
        later = module_cluster.executor()  # made after, but outside any block
        try:
            assert Executor.current() is outer
            with later:
                assert Executor.current(allow_global=False) is later
            assert Executor.current(allow_global=False) is outer
        finally:
            later.close()
    with pytest.raises(ValueError, match="allow_global=False"):
        Executor.current(allow_global=False)


def test_timeouts_are_taken_as_dask_writes_them(e):
    """Everywhere dask takes a timeout, it takes "200ms", "5s" or a timedelta as well as
    seconds: the primitives, ``restart``, ``close``, ``story`` and the executor's own."""
    import datetime

    from dist_client import Event, Lock, Semaphore, Variable

    soon, later = "20ms", datetime.timedelta(seconds=RESULT_TIMEOUT)
    queue = Queue("timeouts-" + e.id, executor=e)
    queue.put(1, timeout=later)
    assert queue.get(timeout="5s") == 1
    with pytest.raises(TimeoutError):
        queue.get(timeout=soon)
    variable = Variable("timeouts-" + e.id, executor=e)
    with pytest.raises(TimeoutError):
        variable.get(timeout=soon)
    lock = Lock("timeouts-" + e.id, executor=e)
    assert lock.acquire(timeout="5s") and not lock.acquire(timeout=soon)
    lock.release()
    semaphore = Semaphore(1, name="timeouts-" + e.id, executor=e)
    assert semaphore.acquire(timeout=later)
    semaphore.release()
    assert not Event("timeouts-" + e.id, executor=e).wait(timeout=soon)
    future = e.submit(inc, 1)
    assert future.result(timeout=later) == 2
    assert e.story(future, timeout="30s")
    with pytest.raises(ValueError, match="timeout must be seconds or a duration"):
        queue.get(timeout="soon")
    other = Executor(e.address, token=e.token, timeout="10s", reconnect_timeout=later,
                     set_as_default=False)
    assert other.submit(inc, 2).result(timeout=RESULT_TIMEOUT) == 3
    other.close(timeout="5s")
    assert other.status == "closed"


def test_restart_takes_its_timeout_as_dask_writes_it(executor):
    executor.restart(timeout="60s")
    assert executor.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def read_metadata(path):
    from dist_client import get_executor
    return get_executor().get_metadata(path, "none there")


def test_metadata_is_shared_by_every_client_as_dask_keeps_it(e):
    name = "meta-" + e.id
    e.set_metadata(name, {"a": 1})
    assert e.get_metadata(name) == {"a": 1}
    e.set_metadata([name, "b", "c"], 2)  # nested dicts made where missing
    assert e.get_metadata([name]) == {"a": 1, "b": {"c": 2}}
    assert e.get_metadata((name, "b", "c")) == 2  # (a tuple is a path too, as dask reads it)
    assert e.submit(read_metadata, [name, "b"]).result(RESULT_TIMEOUT) == {"c": 2}
    assert e.submit(read_metadata, [name, "x"]).result(RESULT_TIMEOUT) == "none there"
    assert e.get_metadata([name, "a", "deeper"], None) is None
    with pytest.raises(KeyError):
        e.get_metadata("nothing-" + e.id)
    # an asynchronous executor's are coroutines, as dask's asynchronous client's

    async def main():
        async with Executor(e.address, asynchronous=True) as ae:
            await ae.set_metadata([name, "b", "d"], 3)
            assert await ae.get_metadata([name, "b"]) == {"c": 2, "d": 3}
            assert await ae.get_metadata(["nothing-" + e.id], "none") == "none"
    asyncio.run(main())
    assert e.get_metadata([name, "b", "d"]) == 3


def test_dump_cluster_state_writes_what_the_cluster_reports_in_dasks_layout(e, tmp_path):
    import gzip

    import msgpack
    yaml = pytest.importorskip("yaml")
    futures = e.map(inc, range(3))
    e.gather(futures)
    e.dump_cluster_state(tmp_path / "dump")
    state = msgpack.unpackb(gzip.decompress((tmp_path / "dump.msgpack.gz").read_bytes()))
    assert set(state) == {"scheduler", "workers", "versions"}
    assert set(state["workers"]) == set(e.scheduler_info()["workers"])
    assert set(state["versions"]["workers"]) == set(state["workers"])
    tasks = state["scheduler"]["tasks"]
    for future in futures:
        task = tasks[future.key]
        assert task["state"] == "memory" and task["client_status"] == "finished", task
        assert task["who_has"] == e.who_has([future])[future.key]
        holder = task["who_has"][0]
        assert state["workers"][holder]["tasks"][future.key]["state"] == "memory"

    e.dump_cluster_state(str(tmp_path / "dump"), format="yaml", exclude=["who_has"])
    with open(tmp_path / "dump.yaml") as file:
        read = yaml.safe_load(file)  # plain maps and lists: no Python-only tags
    assert read["scheduler"]["tasks"].keys() == tasks.keys()
    assert all("who_has" not in task for task in read["scheduler"]["tasks"].values())

    with pytest.raises(ValueError, match="Unsupported format 'json'"):
        e.dump_cluster_state(tmp_path / "dump", format="json")
    with pytest.raises(ValueError, match="write_from_scheduler=True"):
        e.dump_cluster_state(tmp_path / "dump", write_from_scheduler=True)


def test_futures_shows_the_keys_held_and_forgets_released_ones_as_dasks(e):
    done = e.submit(inc, 1000)
    done.result(RESULT_TIMEOUT)
    failed = e.submit(fail, 1000)
    failed.exception(RESULT_TIMEOUT)
    held = e.futures
    assert done.key in held and held[done.key].status == "finished"
    assert "finished" in repr(held[done.key])
    assert isinstance(held[failed.key].exception, LookupError)
    assert set(held) >= {done.key, failed.key} and len(held) >= 2
    done.release()
    failed.release()
    assert done.key not in held and failed.key not in e.futures  # a live view, holding none


def make_local_class_instance():
    class Local:  # no module defines it: its class travels by value, being small
        pass
    return Local()


def test_future_type_is_the_class_of_the_value_as_dasks(e):
    import fractions
    third = e.submit(fractions.Fraction, 1, 3)
    gate = Queue()
    waiting = e.submit(gate.get, timeout=RESULT_TIMEOUT)
    assert waiting.type == ""  # pending: nothing known yet
    third.result(RESULT_TIMEOUT)
    assert third.type is fractions.Fraction
    number = e.submit(inc, 1)
    number.result(RESULT_TIMEOUT)
    assert number.type is int
    local = e.submit(make_local_class_instance, pure=False)
    assert type(local.result(RESULT_TIMEOUT)).__name__ == "Local"
    assert local.type.__name__ == "Local"
    gate.put(1)
    assert waiting.result(RESULT_TIMEOUT) == 1 and waiting.type is int
