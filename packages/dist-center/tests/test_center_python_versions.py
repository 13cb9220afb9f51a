"""Pickled code goes only to workers on the Python that pickled it.

A client refuses to submit pickled code while a worker of another Python minor version is in
the cluster; but one may join after the submit. It would refuse every such task sent to it
(and err it): the center keeps them for the workers that can run them, whatever the queue,
placement, partners or stealing would otherwise choose; with running workers none of which
can, they err at once, naming both Pythons, rather than wait for ever.
"""
from dist_center.events import WorkerJoined
from dist_protocol.messages import (ComputeTask, Environment, RegisterWorker, TaskErred,
                                    TaskSpec)

ELEVEN = "cpython-3.11"


def join(center, address: str, python: str, nthreads: int = 1):
    env = Environment(implementation="cpython", python=python, packages={})
    return center(WorkerJoined(RegisterWorker(address=address, nthreads=nthreads), env))


def pickled(key: str, tag: str = ELEVEN, **fields) -> TaskSpec:
    return TaskSpec(key=key, function="f", pickled_with=tag, **fields)


def sent(out) -> list[tuple[str, str]]:
    return [(to, m.key) for to, m in out if isinstance(m, ComputeTask)]


def test_queued_tasks_wait_for_their_python_when_another_joins(center):
    join(center, "old", "3.11.7")
    out = center.submit(*(pickled(f"t{i}") for i in range(200)))
    queued = [k for k in (f"t{i}" for i in range(200)) if center.state_of(k) == "queued"]
    assert queued and all(to == "old" for to, _ in sent(out))

    out = join(center, "new", "3.13.0", nthreads=4)

    assert sent(out) == []
    assert center.processing("new") == []
    out = center.finish(center.processing("old")[0])
    assert sent(out) and all(to == "old" for to, _ in sent(out))
    assert center.processing("new") == []


def test_import_path_tasks_go_to_any_python(center):
    join(center, "old", "3.11.7")
    join(center, "new", "3.13.0")

    out = center.submit(TaskSpec(key="a", function="operator:add"),
                        TaskSpec(key="b", function="operator:add"))

    assert sorted(to for to, _ in sent(out)) == ["new", "old"]


def test_a_task_placed_while_both_are_there_goes_to_its_own_python(center):
    join(center, "new", "3.13.0", nthreads=8)
    join(center, "old", "3.11.7")

    out = center.submit(pickled("a"), pickled("b"), pickled("c", "cpython-3.13"))

    assert sorted(sent(out)) == [("new", "c"), ("old", "a"), ("old", "b")]


def test_with_only_another_python_a_task_errs_naming_both(center, match):
    join(center, "new", "3.13.0")

    out = center.submit(pickled("a"))

    assert out == [("alice", match(TaskErred, key="a", exception_type="EnvironmentMismatch"))]
    message = out[0][1].message
    assert "pickled by CPython 3.11" in message and "new runs CPython 3.13.0" in message


def test_tasks_waiting_for_any_worker_err_when_only_another_python_joins(center, match):
    center.submit(pickled("a"), pickled("b", deps=[]), TaskSpec(key="c", function="math:sqrt"))
    assert center.state_of("a") in ("queued", "no-worker")

    out = join(center, "new", "3.13.0")

    erred = sorted(m.key for _, m in out if isinstance(m, TaskErred))
    assert erred == ["a", "b"]
    assert sent(out) == [("new", "c")]  # an import path runs on any Python


def test_the_last_worker_of_its_python_leaving_errs_its_queued_tasks(center, match):
    join(center, "old", "3.11.7")
    join(center, "new", "3.13.0", nthreads=4)
    center.submit(*(pickled(f"t{i}") for i in range(5)))

    out = center.leave("old")

    assert sent(out) == []
    assert {m.key for _, m in out if isinstance(m, TaskErred)} == {f"t{i}" for i in range(5)}


def test_tasks_of_two_pythons_in_one_queue_reach_workers_of_each(center):
    join(center, "old", "3.11.7")
    join(center, "new", "3.13.0")
    # Queued in turn: first a run of 3.13 tasks, then a run of 3.11 ones.
    center.submit(*(pickled(f"n{i}", "cpython-3.13") for i in range(100)),
                  *(pickled(f"o{i}") for i in range(100)))
    done = set()
    for _ in range(400):
        running = [(w, k) for w in ("old", "new") for k in center.processing(w)]
        if not running:
            break
        for worker, key in running:
            assert key.startswith("o" if worker == "old" else "n"), (worker, key)
        worker, key = running[0]
        center.finished(worker, key)
        done.add(key)
    assert len(done) == 200
