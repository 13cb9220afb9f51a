"""About fifty dask.array / dask.dataframe / dask.bag / dask.delayed computations on dist, each
compared with dask's synchronous scheduler through every way dist runs dask: ``e.get`` as the
scheduler, ``e.compute``, ``e.persist`` then compute, and ``with e.as_dask_scheduler()``."""
from __future__ import annotations

import operator

import pytest

dask = pytest.importorskip("dask")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from dask import delayed  # noqa: E402
from dist_client import Executor  # noqa: E402

pytestmark = pytest.mark.timeout(180)
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 2}


@pytest.fixture(scope="module")
def e(module_cluster):
    with Executor(module_cluster.address) as executor:
        yield executor


def _frame(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.integers(0, 100, n), "b": rng.integers(0, 5, n),
                         "c": rng.random(n),
                         "s": rng.choice(["x", "y", "zz", "www"], n)})


def _ddf(npartitions: int = 4) -> dd.DataFrame:
    return dd.from_pandas(_frame(), npartitions=npartitions)


def _timeseries() -> dd.DataFrame:
    index = pd.date_range("2026-01-01", periods=500, freq="h")
    frame = pd.DataFrame({"v": np.arange(500.0)}, index=index)
    return dd.from_pandas(frame, npartitions=5)


def _x() -> da.Array:
    return da.from_array(np.arange(400.0).reshape(20, 20), chunks=(5, 7))


def _random() -> da.Array:
    return da.from_array(np.random.default_rng(1).random((60, 8)), chunks=(15, 8))


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def _diamond():
    shared = delayed(inc)(1)
    return delayed(add)(delayed(inc)(shared), delayed(operator.mul)(shared, 3))


def _pair(x):
    return x, x * 2


def _part(i: int) -> pd.DataFrame:
    return pd.DataFrame({"a": range(i, i + 10), "b": [i] * 10})


WORKLOADS = {
    # dask.array
    "array-sum": lambda: (da.arange(10_000, chunks=1_000) * 2).sum(),
    "array-matmul": lambda: (_x() @ _x().T).mean(),
    "array-rechunk-std": lambda: da.from_array(np.arange(1000.0), chunks=100).rechunk(250).std(),
    "array-slicing": lambda: da.from_array(np.arange(100).reshape(10, 10), chunks=3)[2:8, ::2],
    "array-mean-axis": lambda: _random().mean(axis=0),
    "array-cumsum": lambda: _x().cumsum(axis=1),
    "array-transpose-add": lambda: _x() + _x().T,
    "array-map-blocks": lambda: _x().map_blocks(lambda b: b * 2 + 1, dtype=float),
    "array-argmax": lambda: _x().argmax(axis=0),
    "array-reshape": lambda: da.arange(400.0, chunks=100).reshape(20, 20).sum(axis=1),
    "array-concatenate": lambda: da.concatenate([_x(), _x() * 2], axis=0).max(axis=1),
    "array-stack": lambda: da.stack([_x(), -_x()]).min(axis=0),
    "array-where": lambda: da.where(_x() > 200, _x(), 0).sum(),
    "array-unique": lambda: da.unique(da.from_array(np.arange(100) % 7, chunks=13)),
    "array-svd-values": lambda: da.linalg.svd(_random())[1],
    "array-topk": lambda: da.from_array(np.arange(100.0)[::-1], chunks=10).topk(5),
    "array-fancy-index": lambda: _x()[[1, 5, 17], :][:, [0, 3]],
    "array-map-overlap": lambda: da.from_array(np.arange(50.0), chunks=10).map_overlap(
        lambda b: np.convolve(b, [1, 1, 1], "same"), depth=1, boundary="none"),
    "array-einsum": lambda: da.einsum("ij,ij->i", _x(), _x()),
    "array-qr": lambda: abs(da.linalg.qr(_random())[1]),
    # dask.dataframe
    "frame-groupby-mean": lambda: _ddf().groupby("b").c.mean(),
    "frame-groupby-agg": lambda: _ddf().groupby("b").agg({"a": "sum", "c": ["min", "max"]}),
    "frame-merge": lambda: _ddf(3).merge(
        dd.from_pandas(_frame()[["b", "a"]].drop_duplicates("b"), npartitions=2), on="b")
    .a_x.sum(),
    "frame-filter-describe": lambda: _ddf().query("a > 50").c.describe(),
    "frame-set-index": lambda: _ddf().set_index("a").c.sum(),
    "frame-value-counts": lambda: _ddf().s.value_counts(),
    "frame-rolling": lambda: _timeseries().v.rolling(3).mean(),
    "frame-resample": lambda: _timeseries().v.resample("1D").sum(),
    "frame-drop-duplicates": lambda: _ddf()[["b", "s"]].drop_duplicates(),
    "frame-nunique": lambda: _ddf().s.nunique(),
    "frame-assign": lambda: _ddf().assign(d=lambda f: f.a * f.c).d.sum(),
    "frame-map-partitions": lambda: _ddf().map_partitions(len).sum(),
    "frame-join-index": lambda: _ddf().join(
        dd.from_pandas(pd.DataFrame({"z": np.arange(1000) % 9}), npartitions=2)).z.sum(),
    "frame-string-ops": lambda: _ddf().s.str.upper().str.len().sum(),
    "frame-cumsum": lambda: _ddf().a.cumsum(),
    "frame-sort-values": lambda: _ddf().sort_values("c").a,
    "frame-shuffle": lambda: _ddf().shuffle("b").groupby("b").a.count(),
    "frame-nlargest": lambda: _ddf().a.nlargest(5),
    "frame-isin-count": lambda: _ddf()[_ddf().s.isin(["x", "zz"])].a.count(),
    # (each partition's key names an alias of the delayed value's key, not its own)
    "frame-from-delayed": lambda: dd.from_delayed([delayed(_part)(i) for i in range(3)],
                                                  meta=_part(0), verify_meta=False),
    # dask.bag
    "bag-fold": lambda: db.from_sequence(range(100), npartitions=5).map(inc)
    .filter(lambda v: v % 3).sum(),
    "bag-foldby": lambda: db.from_sequence(range(100), npartitions=4)
    .foldby(lambda v: v % 4, operator.add),
    "bag-frequencies": lambda: db.from_sequence("abracadabra" * 5, npartitions=3).frequencies(),
    "bag-distinct": lambda: db.from_sequence([i % 13 for i in range(200)], npartitions=4)
    .distinct(),
    "bag-pluck": lambda: db.from_sequence([{"k": i, "v": i * i} for i in range(30)],
                                          npartitions=3).pluck("v").max(),
    "bag-to-dataframe": lambda: db.from_sequence([{"k": i % 3, "v": i} for i in range(60)],
                                                 npartitions=3).to_dataframe()
    .groupby("k").v.sum(),
    "bag-word-count": lambda: db.from_sequence(["a b c", "b c", "c"] * 10, npartitions=4)
    .str.split().flatten().frequencies(),
    # dask.delayed
    "delayed-tree": lambda: delayed(sum)([delayed(inc)(i) for i in range(20)]),
    "delayed-diamond": _diamond,
    "delayed-nout": lambda: (lambda pair: delayed(add)(pair[0], pair[1]))(
        delayed(_pair, nout=2)(5)),
    "delayed-kwargs-nested": lambda: delayed(dict)(a=delayed(inc)(1),
                                                   b=[delayed(inc)(2), (delayed(inc)(3),)]),
    "delayed-from-array": lambda: delayed(np.sum)(_x()),
}


def _sorted_if_bag(value):
    if isinstance(value, list):
        return sorted(value, key=repr)
    return value


def _assert_same(got, expected) -> None:
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index())
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index())
    elif isinstance(expected, (list, dict)):
        assert _sorted_if_bag(got) == _sorted_if_bag(expected)
    else:
        np.testing.assert_allclose(got, expected)


def test_there_are_about_fifty_workloads():
    kinds = {name.split("-")[0] for name in WORKLOADS}
    assert kinds == {"array", "frame", "bag", "delayed"} and len(WORKLOADS) >= 40


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_real_dask_workloads_match_the_synchronous_scheduler(e, name):
    build = WORKLOADS[name]
    expected = dask.compute(build(), scheduler="sync")[0]
    results = {
        "get": dask.compute(build(), scheduler=e.get)[0],
        "compute": e.compute(build()).result(60),
        "persist": e.persist(build()).compute(scheduler=e.get),
    }
    with e.as_dask_scheduler():
        results["as_dask_scheduler"] = build().compute()
    for how, got in results.items():
        try:
            _assert_same(got, expected)
        except AssertionError as exc:
            raise AssertionError(f"{name} through {how}: {exc}") from None


def test_several_workloads_in_one_compute_call(e):
    names = ["array-sum", "frame-groupby-mean", "bag-fold", "delayed-diamond"]
    expected = dask.compute(*[WORKLOADS[n]() for n in names], scheduler="sync")
    futures = e.compute([WORKLOADS[n]() for n in names])
    for name, future, value in zip(names, futures, expected):
        try:
            _assert_same(future.result(60), value)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
