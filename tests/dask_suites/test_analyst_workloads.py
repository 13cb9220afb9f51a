"""What an analyst runs with dask, on a local dist cluster, each result checked against dask's
``scheduler="sync"``: dataframes read from CSV and parquet files, arrays, bags of text files,
delayed and futures (iterative algorithms, work queues, tasks that submit tasks, stop flags),
on two workers of two threads and of one thread, and with a worker killed mid-computation.

Not part of the CI run (a few minutes); README.md here gives the command and the results.
"""
from __future__ import annotations

import glob
import operator
import os
import subprocess
import sys
import time

import pytest

dask = pytest.importorskip("dask")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from dask import delayed  # noqa: E402
from dist_client import (Event, Executor, LocalCluster, Variable, as_completed,  # noqa: E402
                         fire_and_forget, futures_of, get_client, wait, worker_client)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", params=[2, 1], ids=["2x2", "2x1"])
def cluster(request):
    with LocalCluster(n_workers=2, threads_per_worker=request.param,
                      dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def e(cluster):
    with Executor(cluster) as executor:
        yield executor


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """CSV, parquet and text files as an analyst finds them on disk."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(7)
    for i in range(6):
        n = 5_000
        frame = pd.DataFrame({
            "id": np.arange(i * n, (i + 1) * n),
            "store": rng.integers(0, 40, n),
            "product": rng.choice(["apple", "pear", "plum", "fig", "kiwi"], n),
            "qty": rng.integers(1, 20, n),
            "price": rng.random(n).round(2) * 10,
        })
        frame.to_csv(root / f"sales-{i}.csv", index=False)
    stores = pd.DataFrame({"store": np.arange(40), "region": np.arange(40) % 4,
                           "size": rng.random(40)})
    stores.to_csv(root / "stores.csv", index=False)
    words = ["alpha", "beta", "gamma", "delta", "pi", "rho", "sigma"]
    for i in range(5):
        lines = [" ".join(rng.choice(words, 8)) for _ in range(2_000)]
        (root / f"text-{i}.txt").write_text("\n".join(lines) + "\n")
    return root


def sales(files) -> dd.DataFrame:
    return dd.read_csv(str(files / "sales-*.csv"))


def stores(files) -> dd.DataFrame:
    return dd.read_csv(str(files / "stores.csv"))


def same(got, expected) -> None:
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(),
                                      check_like=True)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index())
    elif (isinstance(expected, (list, tuple)) and expected
          and isinstance(expected[0], (np.ndarray, pd.Series, pd.DataFrame))):
        assert len(got) == len(expected)
        for g, x in zip(got, expected):
            same(g, x)
    elif isinstance(expected, list):
        assert sorted(got, key=repr) == sorted(expected, key=repr)
    elif isinstance(expected, dict):
        assert got == expected
    else:
        np.testing.assert_allclose(got, expected)


def check(e, collection) -> None:
    """The collection through the executor as dask's scheduler, and through ``e.compute``,
    gives what dask's synchronous scheduler gives."""
    expected = dask.compute(collection, scheduler="sync")[0]
    same(dask.compute(collection, scheduler=e.get)[0], expected)
    computed = e.compute(collection)
    same([f.result(60) for f in computed] if isinstance(computed, list)
         else computed.result(60), expected)


# dataframe

def test_csv_groupby_with_several_aggregations(e, files):
    check(e, sales(files).groupby("product").agg(
        {"qty": ["sum", "mean", "max"], "price": ["min", "std", "count"]}))


def test_csv_named_aggregations_by_two_columns(e, files):
    frame = sales(files).assign(revenue=lambda f: f.qty * f.price)
    check(e, frame.groupby(["store", "product"]).agg(
        total=("revenue", "sum"), n=("id", "count"), mean_qty=("qty", "mean")))


def test_parquet_written_and_read_back(e, files, tmp_path):
    pytest.importorskip("pyarrow")
    path = str(tmp_path / "sales.parquet")
    with dask.config.set(scheduler=e.get):
        sales(files).to_parquet(path, write_index=False)
    assert len(glob.glob(os.path.join(path, "*.parquet"))) == 6
    back = dd.read_parquet(path)
    check(e, back.groupby("store").price.mean())
    assert len(back) == 30_000


def test_hash_join_of_two_frames(e, files):
    left = sales(files)
    right = stores(files).repartition(npartitions=3)
    check(e, left.merge(right, on="store", how="inner", shuffle_method="tasks")
          .groupby("region").qty.sum())


def test_broadcast_join_of_a_small_frame(e, files):
    joined = sales(files).merge(stores(files).repartition(npartitions=2), on="store",
                                broadcast=True)
    check(e, joined.groupby("region").price.sum())


def test_set_index_then_loc(e, files):
    indexed = sales(files).set_index("id")
    check(e, indexed.loc[12_000:12_500])
    check(e, indexed.loc[[5, 17_000, 29_999]].qty)


def test_rolling_windows(e):
    index = pd.date_range("2026-01-01", periods=2_000, freq="15min")
    frame = pd.DataFrame({"v": np.sin(np.arange(2_000) / 10)}, index=index)
    series = dd.from_pandas(frame, npartitions=8).v
    check(e, series.rolling("2h").mean())
    check(e, series.rolling(7).sum())


def test_map_partitions_with_meta(e, files):
    def revenue_per_product(part):
        return part.assign(revenue=part.qty * part.price).groupby("product").revenue.sum()

    meta = pd.Series(dtype=float, name="revenue", index=pd.Index([], name="product",
                                                                 dtype=object))
    per_partition = sales(files).map_partitions(revenue_per_product, meta=meta)
    check(e, per_partition.reset_index().groupby("product").revenue.sum())


def test_value_counts_nunique_drop_duplicates(e, files):
    frame = sales(files)
    check(e, frame["product"].value_counts())
    check(e, frame.store.nunique())
    check(e, frame[["store", "product"]].drop_duplicates().set_index("store")["product"].count())


def test_categorize_then_pivot_table(e, files):
    frame = sales(files).categorize(columns=["product"])
    check(e, frame.pivot_table(index="store", columns="product", values="qty",
                               aggfunc="sum"))


def test_persist_then_several_computes(e, files):
    frame = e.persist(sales(files).assign(revenue=lambda f: f.qty * f.price))
    wait(frame)
    expected = sales(files).assign(revenue=lambda f: f.qty * f.price)
    same(frame.revenue.sum().compute(scheduler=e.get),
         expected.revenue.sum().compute(scheduler="sync"))
    same(frame.groupby("store").revenue.max().compute(scheduler=e.get),
         expected.groupby("store").revenue.max().compute(scheduler="sync"))
    assert len(frame) == 30_000


def test_repartition(e, files):
    frame = sales(files).repartition(npartitions=3)
    assert frame.npartitions == 3
    check(e, frame.qty.sum())
    check(e, sales(files).repartition(npartitions=11).map_partitions(len))


# array

def test_reductions_over_axes(e):
    x = da.random.RandomState(0).random((600, 400), chunks=(100, 100))
    check(e, [x.sum(axis=0), x.std(axis=1), x.max(axis=(0, 1)), x.mean()])


def test_rechunk_rows_to_columns(e):
    x = da.random.RandomState(1).random((800, 800), chunks=(50, 800))
    columns = x.rechunk((800, 50))
    assert columns.chunks[1] == (50,) * 16
    check(e, columns[:, 3::7])


def test_map_overlap_2d(e):
    x = da.from_array(np.arange(10_000.0).reshape(100, 100), chunks=25)

    def smooth(block):
        return (block + np.roll(block, 1, 0) + np.roll(block, -1, 1)) / 3

    check(e, x.map_overlap(smooth, depth=1, boundary="reflect"))


def test_blockwise_with_a_new_axis(e):
    x = da.from_array(np.arange(60.0).reshape(6, 10), chunks=(3, 5))

    def powers(block):
        return np.stack([block, block ** 2, block ** 3], axis=-1)

    cubed = da.blockwise(powers, "ijk", x, "ij", new_axes={"k": 3}, dtype=float)
    check(e, cubed.sum(axis=(0, 1)))


def test_tall_skinny_qr_and_svd(e):
    x = da.random.RandomState(2).random((4_000, 12), chunks=(500, 12))
    q, r = da.linalg.qr(x)
    check(e, abs(r))
    np.testing.assert_allclose((q @ r).compute(scheduler=e.get), x.compute(scheduler="sync"))
    u, s, v = da.linalg.svd(x)
    check(e, s)


def test_store_into_a_local_numpy_array_is_refused(e):
    """A task writes into the array it was sent, a copy in a worker's process; dask.distributed
    leaves the caller's array as it was without a word. dist says so."""
    x = da.ones((100, 100), chunks=25)
    target = np.zeros((100, 100))
    with pytest.raises(TypeError, match="copies of it in the workers"):
        da.store(x, target, lock=True, scheduler=e.get)
    target[...] = x.compute(scheduler=e.get)
    np.testing.assert_array_equal(target, np.ones((100, 100)))


def test_random_with_seeds(e):
    check(e, da.random.RandomState(42).normal(size=(1_000, 50), chunks=(250, 50)).sum(axis=0))
    check(e, da.random.default_rng(42).standard_normal((1_000, 50), chunks=(250, 25)))


def test_argtopk_and_fancy_slicing(e):
    x = da.random.RandomState(3).random((500, 40), chunks=(100, 20))
    check(e, x[:, 0].argtopk(5))
    check(e, x[:, 1].argtopk(-3))
    check(e, x[[3, 499, 0, 250], :][:, [39, 1, 20]])
    check(e, x[x[:, 0] > 0.9][:, :4])


def test_nanmean_with_nans(e):
    raw = np.arange(1_000.0).reshape(40, 25)
    raw[::3, ::4] = np.nan
    x = da.from_array(raw, chunks=(10, 10))
    check(e, [da.nanmean(x, axis=0), da.nanmean(x), da.nansum(x, axis=1)])


# bag

def test_word_count_on_text_files(e, files):
    lines = db.read_text(str(files / "text-*.txt"))
    check(e, lines.str.strip().str.split().flatten().frequencies(sort=True))


def test_foldby_and_groupby_by_a_function(e, files):
    words = db.read_text(str(files / "text-*.txt")).str.split().flatten()
    check(e, words.foldby(len, lambda total, w: total + 1, 0, operator.add, 0))
    grouped = words.groupby(lambda w: w[0], shuffle="tasks").map(lambda kv: (kv[0], len(kv[1])))
    check(e, grouped)


def test_bag_to_dataframe(e, files):
    records = db.read_text(str(files / "text-*.txt")).map(
        lambda line: {"first": line.split()[0], "n": len(line)})
    check(e, records.to_dataframe().groupby("first").n.sum())


# delayed and futures

def test_kmeans_ten_iterations_with_persist_and_wait(e):
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0], [5, 5], [0, 8]])
    raw = np.concatenate([c + rng.normal(size=(3_000, 2)) for c in centres])
    points = e.persist(da.from_array(raw, chunks=(1_000, 2)))
    wait(points)

    def kmeans(array, scheduler):
        guess = raw[[0, 3_000, 6_000]] + 1.0
        for _ in range(10):
            labels = da.argmin(((array[:, None, :] - guess[None, :, :]) ** 2).sum(axis=2),
                               axis=1)
            sums = [da.where((labels == k)[:, None], array, 0).sum(axis=0) for k in range(3)]
            counts = [(labels == k).sum() for k in range(3)]
            if scheduler is e.get:
                sums, counts = e.persist(sums), e.persist(counts)
                wait(sums + counts)
            totals, ns = dask.compute(sums, counts, scheduler=scheduler)
            guess = np.array(totals) / np.array(ns)[:, None]
        return guess

    np.testing.assert_allclose(kmeans(points, e.get), kmeans(da.from_array(raw, 1_000), "sync"))
    np.testing.assert_allclose(np.sort(kmeans(points, e.get), axis=0),
                               np.sort(centres, axis=0), atol=0.1)


def test_as_completed_feeds_a_work_queue(e):
    def collatz_steps(n):
        steps = 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        return n, steps

    todo = list(range(2, 200))
    queue = as_completed([e.submit(collatz_steps, todo.pop()) for _ in range(8)])
    results = []
    for future in queue:
        results.append(future.result()[1])
        if todo:
            queue.add(e.submit(collatz_steps, todo.pop()))
    assert sorted(results) == sorted(collatz_steps(n)[1] for n in range(2, 200))


def fib_get_client(n):
    if n < 2:
        return n
    client = get_client()
    a, b = client.submit(fib_get_client, n - 1), client.submit(fib_get_client, n - 2)
    return a.result() + b.result()


def fib_worker_client(n):
    if n < 2:
        return n
    with worker_client() as client:
        a, b = client.submit(fib_worker_client, n - 1), client.submit(fib_worker_client, n - 2)
        return client.gather([a, b])[0] + client.gather(b)


def test_tasks_that_submit_tasks(e):
    assert e.submit(fib_worker_client, 8).result(60) == 21
    assert e.submit(fib_get_client, 3).result(60) == 2


def test_fire_and_forget_and_a_variable_as_a_stop_flag(e):
    stop = Variable("stop-flag", executor=e)
    stop.set(False)
    done = Variable("done-flag", executor=e)

    def spin(name):
        flag = Variable(name)
        rounds = 0
        while not flag.get():
            rounds += 1
            time.sleep(0.01)
        Variable("done-flag").set(rounds)
        return rounds

    fire_and_forget(e.submit(spin, "stop-flag", pure=False))
    seen = e.submit(lambda: Variable("done-flag").get(timeout=60), pure=False)
    stop.set(True)
    assert seen.result(60) >= 0
    assert done.get(timeout=5) >= 0


def test_dask_compute_with_the_executor_as_scheduler(e):
    values = [delayed(operator.mul)(i, i) for i in range(30)]
    assert dask.compute(sum(values), scheduler=e)[0] == sum(i * i for i in range(30))
    with dask.config.set(scheduler=e):
        assert delayed(sum)(values).compute() == sum(i * i for i in range(30))
    with dask.config.set(scheduler=e.get):
        assert da.arange(100, chunks=10).sum().compute() == 4950


def test_annotations_priority_retries_resources(e, cluster, tmp_path):
    marker = tmp_path / "failed-once"

    def flaky(x):
        if not marker.exists():
            marker.write_text("")
            raise RuntimeError("first attempt fails")
        return x + 1

    gpu = subprocess.Popen([sys.executable, "-m", "dist_worker.launch", cluster.address,
                            "--nthreads", "1", "--resources", "GPU=1", "--name", "gpu"],
                           env={**os.environ, "DIST_TOKEN": cluster.token},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with dask.annotate(retries=2):
            retried = delayed(flaky)(1)
        with dask.annotate(priority=10):
            urgent = delayed(operator.add)(1, 2)
        with dask.annotate(resources={"GPU": 1}):
            on_gpu = delayed(lambda: __import__("dist_client").get_worker().name)()
        assert dask.compute(retried, urgent, on_gpu, scheduler=e.get) == (2, 3, "gpu")
    finally:
        gpu.terminate()
        gpu.wait(30)


def test_compute_of_many_collections(e, files):
    collections = [sales(files).qty.sum(), da.arange(1_000, chunks=100).sum(),
                   db.from_sequence(range(100), npartitions=4).sum(),
                   delayed(sum)([1, 2, 3])]
    futures = e.compute(collections)
    assert [f.result(60) for f in futures] == list(dask.compute(*collections,
                                                                scheduler="sync"))


# a worker killed mid-computation

@pytest.mark.parametrize("threads", [2, 1])
def test_a_worker_killed_mid_computation(threads):
    def slow_block(block):
        time.sleep(0.05)
        return block * 2

    x = da.random.RandomState(5).random((4_000, 100), chunks=(100, 100))
    doubled = x.map_blocks(slow_block, dtype=float)
    expected = doubled.sum(axis=0).compute(scheduler="sync")
    with LocalCluster(n_workers=2, threads_per_worker=threads, dashboard_address=None) as local, \
            Executor(local) as e:
        persisted = e.persist(doubled)
        next(iter(as_completed(futures_of(persisted))))  # some done, the rest under way
        victim = next(iter(local.workers.values()))
        victim.process.kill()
        np.testing.assert_allclose(persisted.sum(axis=0).compute(scheduler=e.get), expected)


def slow_partition_announcing_its_start(part):
    Event("a-partition-started").set()
    time.sleep(0.1)
    return part


@pytest.mark.parametrize("threads", [2, 1])
def test_a_worker_killed_during_a_hash_join(threads):
    rng = np.random.default_rng(6)
    left = pd.DataFrame({"k": rng.integers(0, 500, 40_000), "v": rng.random(40_000)})
    right = pd.DataFrame({"k": np.arange(500), "w": np.arange(500) % 7})

    def joined():
        slow = dd.from_pandas(left, npartitions=16).map_partitions(
            slow_partition_announcing_its_start)
        return slow.merge(dd.from_pandas(right, npartitions=4), on="k",
                          shuffle_method="tasks").groupby("w").v.sum()

    expected = joined().compute(scheduler="sync")
    with LocalCluster(n_workers=2, threads_per_worker=threads, dashboard_address=None) as local, \
            Executor(local) as e:
        result = e.compute(joined())
        assert Event("a-partition-started", executor=e).wait(timeout=30)
        next(iter(local.workers.values())).process.kill()
        same(result.result(90), expected)
