"""Pinned tasks (feature ``pinned-tasks``, a client's run on every worker): a task that must
run on one worker errs once no registered worker is that one, where a task merely restricted
with ``workers=`` waits for such a worker to join."""
from dist_protocol.messages import TaskErred
from dist_center.events import WorkerLeft


def pinned(center, key, worker):
    return center.spec(key, workers=[worker], pinned=True)


def test_a_pinned_task_whose_worker_dies_while_it_runs_errs_at_once(center, match):
    center.join("w1")
    center.join("w2")
    assert center.submit(pinned(center, "run-on-w1", "w1"),
                         center.spec("restricted", workers=["w1"])) == [
        ("w1", center.compute("run-on-w1")), ("w1", center.compute("restricted"))]

    out = center.leave("w1", reason="killed")

    assert out == [("alice", match(TaskErred, key="run-on-w1", exception_type="WorkerGone",
                                   message="task run-on-w1 runs on w1 only, and no such worker "
                                           "is in the cluster now (it was running when that "
                                           "worker died): it left or died, or never joined"))]
    assert center.state_of("run-on-w1") == "erred"
    assert center.state_of("restricted") == "no-worker"  # as before: it waits for a w1


def test_a_pinned_task_for_a_worker_not_in_the_cluster_errs_at_submit(center, match):
    center.join("w1")

    out = center.submit(pinned(center, "run-on-w9", "w9"))

    assert out == [("alice", match(TaskErred, key="run-on-w9", exception_type="WorkerGone"))]
    assert "(it was running" not in out[0][1].message


def test_a_pinned_task_waits_for_its_paused_worker_and_errs_if_it_leaves(center, match):
    center.join("w1", name="alpha")
    center.join("w2")
    center.heartbeat("w1", paused=True)
    assert center.submit(pinned(center, "run-on-alpha", "alpha")) == []
    assert center.state_of("run-on-alpha") == "no-worker"

    out = center(WorkerLeft("w1", "unregistered", graceful=True))

    assert out == [("alice", match(TaskErred, key="run-on-alpha", exception_type="WorkerGone"))]


def test_a_pinned_task_runs_on_its_worker_as_any_other(center):
    center.join("w1", name="alpha")
    center.join("w2")
    assert center.submit(pinned(center, "a", "alpha")) == [("w1", center.compute("a"))]
    assert center.finish("a")[0][1].key == "a"
    assert center.state_of("a") == "memory"
