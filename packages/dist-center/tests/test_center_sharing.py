"""Seceded tasks, datasets and fire-and-forget at the center."""
from dist_protocol.messages import (ComputeTask, DatasetReply, FireAndForget, GetDataset,
                                    KeyInMemory, KeyLost, ListDatasets, PublishDataset,
                                    TaskSeceded, UnpublishDataset, WantKeys)
from dist_protocol.serialize import serialize


def test_a_seceded_task_frees_its_slot_for_a_queued_task(center):
    center.join("w1", nthreads=1)
    center.state.avg_duration = 1.0  # long tasks: no margin beyond the thread
    center.submit("parent")
    center.submit("a", "b")
    assert center.processing("w1") == ["parent", "a"]
    assert center.state_of("b") == "queued"

    out = center.worker_sent("w1", TaskSeceded(key="parent"))

    assert [(to, type(m)) for to, m in out] == [("w1", ComputeTask)]
    assert center.processing("w1") == ["parent", "a", "b"]
    center.finish("parent")
    assert center.state.workers["w1"].long_running == set()


def test_a_seceded_task_on_a_worker_that_dies_counts_as_running_there(center):
    center.join("w1", nthreads=1)
    center.join("w2", nthreads=1)
    center.submit("parent")
    worker = center.processing_on("parent")
    center.worker_sent(worker, TaskSeceded(key="parent"))
    center.leave(worker)
    assert center.task("parent").died_on == (worker,)


def test_a_dataset_holds_its_keys_after_the_publisher_lets_go(center, match):
    center.join("w1")
    center.submit("x")
    center.finish("x")
    data = serialize({"x": "ref"})
    out = center.client_sent(PublishDataset(id=1, name="d", keys=["x"], data=data))
    assert out == [("alice", DatasetReply(id=1))]

    center.release("x")
    assert center.state_of("x") == "memory"

    center.connect("bob")
    out = center.client_sent(GetDataset(id=2, name="d"), "bob")
    assert out == [("bob", DatasetReply(id=2, keys=["x"], data=data))]
    out = center.client_sent(WantKeys(keys=["x"]), "bob")
    assert out == [("bob", match(KeyInMemory, key="x", workers=["w1"]))]

    assert center.client_sent(ListDatasets(id=3), "bob") == [
        ("bob", DatasetReply(id=3, names=["d"]))]
    assert center.client_sent(UnpublishDataset(id=4, name="d"), "bob") == [
        ("bob", DatasetReply(id=4))]
    assert center.state_of("x") == "memory"  # bob holds it
    center.release("x", client="bob")
    assert center.state_of("x") == "forgotten"
    assert set(center.state.clients) == {"alice", "bob"}


def test_a_dataset_goes_to_its_readers_with_the_python_that_pickled_it(center):
    data = serialize(lambda: 1, ("pickle",))
    out = center.client_sent(PublishDataset(id=1, name="d", data=data,
                                            pickled_with="cpython-3.11"))
    assert out == [("alice", DatasetReply(id=1))]
    center.connect("bob")
    assert center.client_sent(GetDataset(id=2, name="d"), "bob") == [
        ("bob", DatasetReply(id=2, data=data, pickled_with="cpython-3.11"))]


def test_dataset_errors_are_replies(center):
    center.join("w1")
    center.submit("x")
    center.client_sent(PublishDataset(id=1, name="d", keys=["x"]))
    out = center.client_sent(PublishDataset(id=2, name="d", keys=["x"]))
    assert "exists already" in out[0][1].error
    out = center.client_sent(PublishDataset(id=3, name="e", keys=["nope"]))
    assert "nope" in out[0][1].error and "e" not in center.state.datasets
    assert "no dataset" in center.client_sent(GetDataset(id=4, name="zz"))[0][1].error
    assert "no dataset" in center.client_sent(UnpublishDataset(id=5, name="zz"))[0][1].error
    out = center.client_sent(WantKeys(keys=["gone"]))
    assert out == [("alice", KeyLost(key="gone", message=out[0][1].message))]


def test_publishing_again_with_override_replaces_the_keys(center):
    center.join("w1")
    center.submit("x", "y")
    center.client_sent(PublishDataset(id=1, name="d", keys=["x"]))
    out = center.client_sent(PublishDataset(id=2, name="d", keys=["x", "y"], override=True))
    assert out == [("alice", DatasetReply(id=2))]
    center.release("x", "y")
    assert {center.state_of("x"), center.state_of("y")} <= {"processing", "queued"}
    center.client_sent(PublishDataset(id=3, name="d", keys=["y"], override=True))
    assert center.state_of("x") == "forgotten"


def test_a_fired_task_runs_to_its_end_then_is_forgotten(center):
    center.join("w1")
    center.submit(center.spec("a"), center.spec("b", "a"))
    center.client_sent(FireAndForget(keys=["b"]))
    center.release("a", "b")
    assert center.state_of("b") in ("waiting", "processing")
    center.finish("a")
    assert center.state_of("b") == "processing"
    center.finish("b")
    assert center.state.tasks == {}


def test_a_fired_task_that_fails_is_forgotten_too(center):
    center.join("w1")
    center.submit("a")
    center.client_sent(FireAndForget(keys=["a"]))
    center.release("a")
    center.erred("w1", "a")
    assert center.state.tasks == {}
