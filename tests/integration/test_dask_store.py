"""``da.store`` on a cluster: into a numpy array of the caller's process it is refused (its
tasks would write into copies in the workers and leave the caller's array unchanged), also
with ``return_stored=True``, which would bring back the copies' values while the caller's
array stays as it was."""
from __future__ import annotations

import pytest

da = pytest.importorskip("dask.array")
np = pytest.importorskip("numpy")


@pytest.mark.parametrize("optimize_graph", [True, False])
def test_a_store_into_a_local_array_is_refused_saying_why(executor, optimize_graph):
    target = np.zeros((8, 8))
    with pytest.raises(TypeError, match="copies of it in the workers"):
        da.store(da.ones((8, 8), chunks=4), target, lock=True, scheduler=executor.get,
                 optimize_graph=optimize_graph)
    assert not target.any()


def test_a_store_returning_what_it_stored_is_refused_too(executor):
    target = np.zeros((8, 8))
    with pytest.raises(TypeError, match="copies of it in the workers"):
        da.store(da.ones((8, 8), chunks=4), target, return_stored=True,
                 scheduler=executor.get)


def test_a_memory_map_is_refused_too(executor, tmp_path):
    target = np.memmap(tmp_path / "target", dtype=float, mode="w+", shape=(8, 8))
    with pytest.raises(TypeError, match="da.store into a numpy array"):
        da.store(da.ones((8, 8), chunks=4), target, scheduler=executor.get)


def test_arrays_that_only_read_a_local_array_still_run(executor):
    source = np.arange(64.0).reshape(8, 8)
    total = da.from_array(source, chunks=4).sum()
    assert total.compute(scheduler=executor.get) == source.sum()
