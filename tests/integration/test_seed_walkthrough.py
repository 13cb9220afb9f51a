"""Every line of the seed walkthrough ("The user's view" in the design), against real processes.

    $ dcenter                          # prints: Start center at 127.0.0.1:8787
    $ dworker 127.0.0.1:8787           # prints: Start worker at 127.0.0.1:46990
                                       #         Registered with center at: 127.0.0.1:8787

The workers run as a user starts them: under their nanny (the default of ``dworker``).
"""
from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator

import pytest
from dist_client import Executor, Future

pytestmark = pytest.mark.timeout(60)

MODULE_CLUSTER = {"n_workers": 2, "nthreads": 2, "nanny": True}
RESULT_TIMEOUT = 30

FINISHED_REPR = re.compile(r"<Future: status: finished, key: inc-[0-9a-f]{32}>")


def inc(x):
    return x + 1


def double(x):
    return 2 * x


def make_list(n):
    return list(range(n))


def stamp(x):
    """A different value every time it runs: equal values mean it ran once."""
    return f"{x}-{uuid.uuid4().hex}"


def describe(value):
    """The value's structure with the types of its parts, to see what the worker received."""
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [describe(v) for v in value]]
    if isinstance(value, (set, frozenset)):
        return [type(value).__name__, sorted(describe(v) for v in value)]
    if isinstance(value, dict):
        return ["dict", {k: describe(v) for k, v in value.items()}]
    return value


@pytest.fixture(scope="module")
def e(module_cluster):
    with Executor(module_cluster.address) as executor:
        yield executor


def test_the_servers_print_what_the_walkthrough_shows(module_cluster):
    center_lines = module_cluster.center.output().splitlines()
    assert re.fullmatch(r"Start center at 127\.0\.0\.1:\d+", center_lines[0]), center_lines
    for worker in module_cluster.workers:
        lines = [line for line in worker.output().splitlines() if line.strip()]
        assert re.fullmatch(r"Start worker at 127\.0\.0\.1:\d+", lines[0]), lines
        assert lines[1] == f"Registered with center at: {module_cluster.address}", lines
        assert worker.address != module_cluster.address


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_the_default_address_is_the_walkthroughs(start_center, start_worker):
    if not port_is_free(8787):
        pytest.skip("port 8787 is taken on this machine (a center of someone's own?)")
    center = start_center(port=None)
    assert center.output().splitlines()[0] == "Start center at 127.0.0.1:8787"
    worker = start_worker("127.0.0.1:8787", nanny=True)
    assert worker.output().splitlines()[-1] == "Registered with center at: 127.0.0.1:8787"
    with Executor("127.0.0.1:8787") as e:
        assert e.submit(inc, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_submit_gives_a_future_with_the_walkthrough_repr(e):
    future = e.submit(inc, 1)
    assert isinstance(future, Future)
    assert future.result(timeout=RESULT_TIMEOUT) == 2
    assert future.status == "finished" and future.done()
    assert FINISHED_REPR.fullmatch(repr(future)), repr(future)
    assert re.fullmatch(r"inc-[0-9a-f]{32}", future.key)


def test_equal_pure_calls_are_one_task(e):
    first, second = e.submit(stamp, 1), e.submit(stamp, 1)
    assert first.key == second.key
    assert first.result(timeout=RESULT_TIMEOUT) == second.result(timeout=RESULT_TIMEOUT)
    assert e.map(inc, range(5))[1].key == e.submit(inc, 1).key
    assert e.submit(inc, 2).key != e.submit(inc, 1).key
    assert e.submit(inc, x=1).key != e.submit(inc, 1).key


def test_impure_calls_get_unique_keys_and_run_each_time(e):
    first, second = e.submit(stamp, 1, pure=False), e.submit(stamp, 1, pure=False)
    assert first.key != second.key
    assert re.fullmatch(r"stamp-[0-9a-f]{32}", first.key)
    assert first.result(timeout=RESULT_TIMEOUT) != second.result(timeout=RESULT_TIMEOUT)
    mapped = e.map(stamp, [1, 1], pure=False)
    assert len({f.key for f in mapped}) == 2
    assert len(set(e.gather(mapped, timeout=RESULT_TIMEOUT))) == 2


def test_map_then_gather(e):
    futures = e.map(inc, range(5))
    assert all(isinstance(f, Future) for f in futures)
    assert e.gather(futures, timeout=RESULT_TIMEOUT) == [1, 2, 3, 4, 5]


def test_a_future_as_an_argument_stays_on_the_cluster(e, monkeypatch):
    """A task on a future's value runs where the value is: the client never fetches it (small
    results, a kilobyte at most, come with the notice that they are done; this one is big)."""
    from dist_client import transfer

    fetched: list[str] = []
    real_fetch = transfer.fetch

    async def recording_fetch(connections, holders, *args, **kwargs):
        fetched.extend(holders)
        return await real_fetch(connections, holders, *args, **kwargs)

    monkeypatch.setattr(transfer, "fetch", recording_fetch)
    intermediate = e.submit(make_list, 50_000, pure=False)
    final = e.submit(len, intermediate)
    assert final.result(timeout=RESULT_TIMEOUT) == 50_000
    assert intermediate.status == "finished"
    assert intermediate.key not in fetched
    assert e.submit(double, e.submit(inc, 1)).result(timeout=RESULT_TIMEOUT) == 4


def test_sum_of_a_list_of_futures(e):
    assert e.submit(sum, e.map(double, range(10))).result(timeout=RESULT_TIMEOUT) == 90


def test_futures_inside_lists_tuples_sets_and_dicts_become_their_values(e):
    one, two, three = e.map(inc, [0, 1, 2])

    def show(*args, **kwargs):
        return describe(list(args)), describe(kwargs)

    args, kwargs = e.submit(show, [one, (two, {"x": three})], {one, two}, (three,),
                            frozenset([three]), mapping={"a": one, "b": [two, (three,)]}
                            ).result(timeout=RESULT_TIMEOUT)
    assert args == ["list", [["list", [1, ["tuple", [2, ["dict", {"x": 3}]]]]],
                             ["set", [1, 2]],
                             ["tuple", [3]],
                             ["frozenset", [3]]]]
    assert kwargs == ["dict", {"mapping": ["dict", {"a": 1, "b": ["list", [2, ["tuple", [3]]]]}]}]


def test_scatter_puts_data_on_the_workers(e, module_cluster):
    futures = e.scatter([1, 2, 3])
    assert [f.status for f in futures] == ["finished"] * 3
    who_has = e.who_has(futures)
    worker_addresses = {w.address for w in module_cluster.workers}
    assert all(who_has[f.key] and set(who_has[f.key]) <= worker_addresses for f in futures)
    assert e.gather(futures, timeout=RESULT_TIMEOUT) == [1, 2, 3]
    assert e.submit(inc, futures[0]).result(timeout=RESULT_TIMEOUT) == 2
    assert e.submit(sum, futures).result(timeout=RESULT_TIMEOUT) == 6


def test_scatter_a_dict_and_a_single_value(e):
    named = e.scatter({"x": 10, "y": 20})
    assert set(named) == {"x", "y"} and named["x"].key == "x"
    assert e.submit(sum, [named["x"], named["y"]]).result(timeout=RESULT_TIMEOUT) == 30
    single = e.scatter(5)
    assert isinstance(single, Future) and single.result(timeout=RESULT_TIMEOUT) == 5


def test_pandas_read_csv_over_scattered_filenames(e, tmp_path):
    pd = pytest.importorskip("pandas")
    filenames = []
    for month in range(1, 4):
        path = tmp_path / f"2024-{month:02d}.csv"
        dates = pd.date_range(f"2024-{month:02d}-01", periods=5, freq="D")
        frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "amount": range(5)})
        frame.to_csv(path, index=False)
        filenames.append(str(path))

    frames = e.map(pd.read_csv, e.scatter(filenames), parse_dates=['date'])

    assert len(frames) == 3
    results = e.gather(frames, timeout=RESULT_TIMEOUT)
    for filename, frame in zip(filenames, results):
        expected = pd.read_csv(filename, parse_dates=["date"])
        pd.testing.assert_frame_equal(frame, expected)
        assert pd.api.types.is_datetime64_any_dtype(frame["date"])
    total = e.submit(lambda dfs: int(sum(df.amount.sum() for df in dfs)), frames)
    assert total.result(timeout=RESULT_TIMEOUT) == 3 * sum(range(5))


def test_small_and_large_results_come_back_whole_and_fresh_each_time(e):
    """Small results travel with the center's notice, large ones are fetched from the worker:
    either way a value is the task's, and each ``result()`` is a copy of its own."""
    small, large = e.submit(make_list, 3), e.submit(make_list, 100_000)
    assert small.result(timeout=RESULT_TIMEOUT) == [0, 1, 2]
    assert large.result(timeout=RESULT_TIMEOUT) == list(range(100_000))
    small.result().append("changed here")
    assert small.result() == [0, 1, 2]
    assert e.gather([small, large, small]) == [[0, 1, 2], list(range(100_000)), [0, 1, 2]]
    assert e.submit(len, small).result(timeout=RESULT_TIMEOUT) == 3


def test_gather_rebuilds_nested_structures(e):
    a, b, c = e.map(inc, [1, 2, 3])
    gathered = e.gather({"list": [a, (b, 7)], "dict": {"c": c, "plain": "text"}, "tuple": (a,)},
                        timeout=RESULT_TIMEOUT)
    assert gathered == {"list": [2, (3, 7)], "dict": {"c": 4, "plain": "text"}, "tuple": (2,)}
    assert isinstance(gathered["list"][1], tuple)
    assert e.gather([[a], [b, [c]]], timeout=RESULT_TIMEOUT) == [[2], [3, [4]]]
    assert e.gather(a, timeout=RESULT_TIMEOUT) == 2
    # As dask's: an iterator in, an iterator out, each value gathered as it is read.
    lazily = e.gather(iter([a, b]), timeout=RESULT_TIMEOUT)
    assert isinstance(lazily, Iterator)
    assert list(lazily) == [2, 3]


def test_context_manager_closes_the_executor(module_cluster):
    with Executor(module_cluster.address) as executor:
        assert executor.submit(inc, 41).result(timeout=RESULT_TIMEOUT) == 42
    assert executor.status == "closed"
