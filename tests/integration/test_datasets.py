"""Named datasets kept by the center, fire_and_forget and persist, on real processes."""
from __future__ import annotations

import gc
import json
import os
import time
import urllib.request

import pytest
from dist_client import Future, fire_and_forget
from dist_protocol.comm import connect
from dist_protocol.messages import (DatasetReply, GetDataset, KeyInMemory, PublishDataset,
                                    Submit, TaskSpec, WantKeys)
from dist_protocol.serialize import KeyRef, deserialize, serialize


def inc(x):
    return x + 1


def wait_for_file(path):
    while not os.path.exists(path):  # the test makes it: an event from another process
        time.sleep(0.01)
    return path


def write_when_told(go, done):
    wait_for_file(go)
    with open(done, "w") as f:
        f.write("done")
    return done


def center_tasks(url: str) -> int:
    with urllib.request.urlopen(url.rstrip("/") + "/api/status", timeout=10) as response:
        return sum(json.loads(response.read())["tasks"].values())


@pytest.fixture
def counted_cluster(processes):
    """A center with its dashboard (to count its tasks) and two single-threaded workers."""
    center = processes.start_center(dashboard=True)
    workers = [processes.start_worker(center.address, wait=False) for _ in range(2)]
    for worker in workers:
        worker.wait_registered()
    return center, center.wait_for("Dashboard at ")


def test_a_dataset_outlives_its_publisher_and_reaches_another_client(counted_cluster, processes,
                                                                     wait_until):
    center, url = counted_cluster
    alice = processes.executor(center.address)
    x = alice.submit(inc, 1)
    alice.publish_dataset(x, name="x")
    alice.publish_dataset(pair=[x, alice.submit(inc, 10)], meta={"rows": 3, "of": x},
                          shaped=(x, 1.5))
    key = x.key
    alice.close()  # the datasets hold the keys now

    bob = processes.executor(center.address)
    assert bob.list_datasets() == ("meta", "pair", "shaped", "x")
    got = bob.get_dataset("x")
    assert isinstance(got, Future) and got.key == key and got.result() == 2
    pair = bob.get_dataset("pair")
    assert bob.gather(pair) == [2, 11]
    meta = bob.get_dataset("meta")
    assert meta["rows"] == 3 and meta["of"].result() == 2
    shaped = bob.get_dataset("shaped")  # a tuple: pickled, the future a reference inside
    assert type(shaped) is tuple and shaped[0].result() == 2 and shaped[1] == 1.5
    assert "x" in bob.datasets and len(bob.datasets) == 4
    with pytest.raises(TypeError, match="async for"):  # (an AsyncExecutor's are, as dask's)
        bob.datasets.__aiter__()

    with pytest.raises(KeyError, match="exists already"):  # as dask's
        bob.publish_dataset(x=got)
    with pytest.raises(KeyError):
        bob.get_dataset("nope")
    assert bob.get_dataset("nope", default=None) is None

    for name in ("x", "pair", "meta", "shaped"):
        bob.unpublish_dataset(name)
    with pytest.raises(KeyError):
        bob.unpublish_dataset("x")
    assert got.result() == 2  # bob's own futures still hold it
    del got, pair, meta, shaped
    # The errors raised above went through the client's event loop, whose tasks and their
    # exceptions refer to each other: the cycle collector frees the frames that held ``got``.
    gc.collect()
    wait_until(lambda: center_tasks(url) == 0, timeout=30, what="every key to be released")


def test_a_client_in_another_language_reads_a_dataset(counted_cluster, processes):
    """msgpack all the way: the published value with key references, want-keys, the value."""
    center, _ = counted_cluster
    alice = processes.executor(center.address)
    x = alice.submit(inc, 41)
    x.result()
    alice.publish_dataset(answer={"value": x, "note": "inc(41)"})

    async def read():
        comm = await connect(center.address, role="client", name="msgpack-only")
        comm.send(GetDataset(id=1, name="answer"))
        reply = await comm.recv()
        assert isinstance(reply, DatasetReply) and reply.data.serializer == "msgpack"
        value = deserialize(reply.data, allow_pickle=False)
        assert value == {"value": KeyRef(x.key), "note": "inc(41)"}
        comm.send(WantKeys(keys=reply.keys))
        settled = await comm.recv()
        assert isinstance(settled, KeyInMemory) and settled.key == x.key
        comm.send(Submit(tasks=[TaskSpec(key="plus-one", function="operator:add",
                                         args=serialize([[KeyRef(x.key), 1], {}], ["msgpack"]),
                                         deps=[x.key])]))
        comm.send(PublishDataset(id=2, name="from-msgpack", keys=["plus-one"],
                                 data=serialize([KeyRef("plus-one")], ["msgpack"])))
        while not isinstance(reply := await comm.recv(), DatasetReply):
            pass
        assert reply.error == ""
        comm.close()

    import asyncio
    asyncio.run(read())
    [future] = alice.get_dataset("from-msgpack")
    assert future.result() == 43


def test_fire_and_forget_runs_a_task_nobody_holds_to_its_end(counted_cluster, processes,
                                                              tmp_path, wait_until):
    center, url = counted_cluster
    executor = processes.executor(center.address)
    go, done = tmp_path / "go", tmp_path / "done"
    future = executor.submit(write_when_told, str(go), str(done))
    fire_and_forget(future)
    del future
    executor.gather(executor.submit(inc, 1))  # (the release has reached the center by now)
    assert center_tasks(url) >= 1  # the fired task is still held
    go.write_text("go")
    wait_until(done.exists, timeout=30, what="the fired task to run")
    wait_until(lambda: center_tasks(url) == 0, timeout=30, what="the fired task to be forgotten")


def test_persist_keeps_a_dask_collection_on_the_cluster(counted_cluster, processes, wait_until):
    da = pytest.importorskip("dask.array")
    center, url = counted_cluster
    executor = processes.executor(center.address)
    x = da.arange(20, chunks=5) + 1
    [y, total] = executor.persist([x, x.sum()])
    futures = list(y.__dask_graph__().values())
    assert len(futures) == 4 and all(isinstance(f, Future) for f in futures)
    executor.gather(futures)
    assert executor.compute(y * 2).result().tolist() == [2 * i for i in range(1, 21)]
    assert executor.compute(total).result() == 210
    single = executor.persist(x)
    assert single.name == y.name

    executor.publish_dataset(persisted=y)
    other = processes.executor(center.address)
    again = other.get_dataset("persisted")
    assert other.compute(again.sum()).result() == 210
    other.unpublish_dataset("persisted")
    del y, total, single, futures, again
    wait_until(lambda: center_tasks(url) == 0, timeout=30, what="the persisted keys to go")


def test_a_persisted_dataframe_got_back_in_the_same_process_is_of_the_getting_executor(
        counted_cluster, processes):
    """dask's dataframes are cached by their token: one unpickled from a dataset in the process
    that published it was the publisher's own, and a compute on the getter failed ("depends
    on ... nor is any a future of this executor")."""
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    from dist_client import futures_of
    center, _ = counted_cluster
    publisher = processes.executor(center.address)
    frame = pd.DataFrame({"a": range(40), "b": list("xy") * 20})
    df = dd.from_pandas(frame, npartitions=4).persist(scheduler=publisher.get)
    publisher.publish_dataset(frame=df)
    getter = processes.executor(center.address)
    got = getter.get_dataset("frame")
    assert {f.executor for f in futures_of(got)} == {getter}
    assert getter.compute(got).result().to_dict("list") == frame.to_dict("list")
    assert got.groupby("b").a.sum().compute(scheduler=getter.get).to_dict() == {
        "x": sum(range(0, 40, 2)), "y": sum(range(1, 40, 2))}
    getter.unpublish_dataset("frame")


def test_datasets_from_an_async_executor(counted_cluster):
    import asyncio

    from dist_client import AsyncExecutor
    center, _ = counted_cluster

    async def main():
        async with AsyncExecutor(center.address) as e:
            future = e.submit(inc, 1)
            await e.publish_dataset(one=future)
            assert await e.list_datasets() == ("one",)
            got = await e.get_dataset("one")
            assert got.key == future.key and await got == 2
            # the mapping, as dask's asynchronous client has it
            assert (await e.datasets["one"]).key == future.key
            assert [name async for name in e.datasets] == ["one"]
            for blocking in (lambda: e.datasets.__setitem__("two", 2),
                             lambda: e.datasets.__delitem__("one"),
                             lambda: len(e.datasets), lambda: list(e.datasets)):
                with pytest.raises(TypeError, match="AsyncExecutor"):
                    blocking()
            await e.unpublish_dataset("one")
            with pytest.raises(KeyError):
                await e.get_dataset("one")
    asyncio.run(main())


def test_datasets_named_by_ints_and_tuples_as_in_dask_and_others_refused(counted_cluster,
                                                                         processes):
    center, _ = counted_cluster
    e = processes.executor(center.address)
    for name in [("key", 1), 2, "three"]:
        e.datasets[name] = name
        assert e.get_dataset(name) == name == e.datasets[name]
        assert name in e.datasets
    e.publish_dataset([1], name=("pair", 2))
    assert e.get_dataset(("pair", 2)) == [1]
    e.unpublish_dataset(("pair", 2))
    with pytest.raises(KeyError, match="not found"):
        e.get_dataset(("pair", 2))
    assert e.get_dataset(("pair", 2), default=None) is None
    # refused before anything is sent: the connection goes on
    with pytest.raises(TypeError, match="dataset's name"):
        e.datasets[frozenset()] = 1
    assert frozenset() not in e.datasets
    assert e.submit(inc, 1).result(30) == 2 and len(e.list_datasets()) == 3
