"""Keys of dask's types on a real cluster: ``17`` and ``"17"`` (or ``("x", 1)`` and the
string ``"('x', 1)"``, ``b"a"`` and ``"b'a'"``) are different tasks, from one client or two,
and every API that hands keys back gives the key the user chose."""
from __future__ import annotations

import pytest
from dist_client import as_completed, futures_of, wait

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30
LOOKALIKES = [(17, "17"), (("x", 1), "('x', 1)"), (b"a", "b'a'"), (1.5, "1.5")]


def tagged(tag):
    return tag


@pytest.fixture
def e(module_cluster):
    with module_cluster.executor() as executor:
        yield executor


@pytest.mark.parametrize("key, lookalike", LOOKALIKES, ids=repr)
def test_a_key_and_the_string_of_its_literal_are_two_tasks(e, key, lookalike):
    first = e.submit(tagged, "the key", key=key)
    second = e.submit(tagged, "the string", key=lookalike)
    assert first.result(RESULT_TIMEOUT) == "the key"
    assert second.result(RESULT_TIMEOUT) == "the string"
    assert first.key == key and type(first.key) is type(key)
    assert second.key == lookalike


def test_two_clients_keep_the_key_and_its_string_apart(e, module_cluster):
    with module_cluster.executor() as other:
        mine = e.submit(tagged, "int", key=17)
        theirs = other.submit(tagged, "str", key="17")
        assert mine.result(RESULT_TIMEOUT) == "int"
        assert theirs.result(RESULT_TIMEOUT) == "str"
        # equal keys stay one task across clients
        assert other.submit(tagged, "ignored", key=17).result(RESULT_TIMEOUT) == "int"


def test_apis_that_give_keys_back_give_the_user_s_keys(e):
    futures = [e.submit(tagged, i, key=key) for i, key in enumerate([17, ("x", 1), "17"])]
    wait(futures, timeout=RESULT_TIMEOUT)
    keys = {17, ("x", 1), "17"}
    assert {f.key for f in futures} == keys
    assert keys <= set(e.futures) and 17 in e.futures and e.futures[("x", 1)].status == "finished"
    assert set(e.who_has(futures)) == keys
    assert {k for held in e.has_what().values() for k in held} >= keys
    assert set(e.nbytes(futures, summary=False)) == keys
    assert {f.key for f in as_completed(futures)} == keys
    assert {f.key for f in futures_of({"a": futures})} == keys
    assert {entry["key"] for entry in e.story(17, ("x", 1))} == {17, ("x", 1)}
    assert keys <= {record["key"] for record in e.get_task_stream()}
    scattered = e.scatter({18: "eighteen", "18": "the string"})
    assert set(scattered) == {18, "18"}
    assert e.gather(scattered) == {18: "eighteen", "18": "the string"}
    assert {f.key for f in scattered.values()} == {18, "18"}


def test_a_cancelled_key_is_named_as_the_user_gave_it(e):
    import concurrent.futures
    import time
    future = e.submit(time.sleep, 30, key="17")
    e.cancel(future)
    with pytest.raises(concurrent.futures.CancelledError, match="^17 was cancelled"):
        future.result(RESULT_TIMEOUT)


def test_datasets_named_by_a_key_and_its_string_are_two(e):
    e.publish_dataset(**{"7": "the string"})
    e.publish_dataset(e.scatter(["the int"])[0], name=7)
    try:
        assert e.get_dataset(7).result(RESULT_TIMEOUT) == "the int"
        assert e.get_dataset("7") == "the string"
        assert {7, "7"} <= set(e.list_datasets())
    finally:
        e.unpublish_dataset(7)
        e.unpublish_dataset("7")


def test_a_dask_graph_of_tuple_keys_still_computes_and_persists(e):
    da = pytest.importorskip("dask.array")
    from dask.core import flatten
    x = da.ones((4, 4), chunks=2)
    assert (x + x.T).sum().compute(scheduler=e) == 32
    persisted = e.persist(x + 1)
    keys = {f.key for f in futures_of(persisted)}
    assert keys == set(flatten(persisted.__dask_keys__()))
    assert all(type(k) is tuple for k in keys)
    assert persisted.sum().compute(scheduler=e) == 32


def increment(x):
    return x + 1


@pytest.mark.parametrize("key, equal", [(1, 1.0), (("x", 1), ("x", 1.0)), (0, -0.0)], ids=repr)
def test_equal_keys_are_one_key_as_for_dask(e, key, equal):
    """dask looks keys up by equality: a ``get`` of ``1.0`` from a graph naming the key ``1``
    reads it (named apart, it waited for ever), and a submit under ``1.0`` after one under
    ``1`` is that task, as with dask.distributed."""
    assert e.get({key: (increment, 100)}, equal) == 101
    first = e.submit(tagged, "first", key=key)
    again = e.submit(tagged, "second", key=equal)
    assert again.result(RESULT_TIMEOUT) == first.result(RESULT_TIMEOUT) == "first"
