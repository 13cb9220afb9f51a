"""``task-spec``: the spec of a task a client wants, or of the erred task where its error
began, for the client to run it again in its own process; ``cluster-info-reply.started``."""
from dist_protocol.messages import ClusterInfo, ClusterInfoReply, GetTaskSpec, TaskSpecReply


def reply(out):
    [(to, message)] = out
    assert to == "alice" and isinstance(message, TaskSpecReply)
    return message


def test_the_spec_of_a_wanted_task_is_given_as_it_was_submitted(center):
    center.join("w1")
    spec = center.spec("a")
    center.submit(spec)

    assert reply(center.client_sent(GetTaskSpec(id=1, key="a"))) == TaskSpecReply(
        id=1, task=spec)


def test_an_erred_dependent_gives_the_spec_of_the_input_whose_run_raised(center):
    center.join("w1")
    center.submit(center.spec("x"), center.spec("a", "x"), center.spec("b", "a"),
                  center.spec("c", "b", "x"))
    center.finish("x")
    center.erred("w1", "a")
    assert center.state_of("c") == "erred"

    assert reply(center.client_sent(GetTaskSpec(id=2, key="c", erred=True))).task.key == "a"
    assert reply(center.client_sent(GetTaskSpec(id=3, key="a", erred=True))).task.key == "a"
    assert reply(center.client_sent(GetTaskSpec(id=4, key="c"))).task.key == "c"


def test_keys_not_wanted_not_erred_or_scattered_are_answered_with_why(center):
    center.join("w1")
    center.submit("a")
    center.finish("a")
    center.connect("bob")
    center.submit(center.spec("b"), client="bob")

    assert "not a key this client holds" in reply(
        center.client_sent(GetTaskSpec(id=1, key="b"))).error
    assert "not a key this client holds" in reply(
        center.client_sent(GetTaskSpec(id=2, key="unknown"))).error
    not_erred = reply(center.client_sent(GetTaskSpec(id=3, key="a", erred=True)))
    assert not_erred.task is None and "has not erred" in not_erred.error


def test_cluster_info_says_when_the_center_started(center):
    [(_, answer)] = center.client_sent(ClusterInfo(id=5))
    assert isinstance(answer, ClusterInfoReply)
    assert answer.started == center.state.started


def test_replicate_with_workers_copies_there_and_counts_only_copies_there(center):
    from dist_protocol.messages import AcquireReplicas, Replicate, ReplicateReply
    for worker in ("w1", "w2", "w3"):
        center.join(worker)
    center.submit("a")
    holder = center.processing_on("a")
    center.finish("a")
    target = next(w for w in ("w3", "w2") if w != holder)

    out = center.client_sent(Replicate(keys=["a"], n=1, id=7, workers=[target]))

    assert out == [(target, AcquireReplicas(who_has={"a": [holder]}, nbytes={"a": 8}))]
    assert center.keys_added(target, {"a": 8}) == [
        ("alice", ReplicateReply(id=7, status="ok", n=1))]
