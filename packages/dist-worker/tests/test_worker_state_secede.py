"""WorkerState: a running task gives its slot back while it waits (secede), and takes one back
before it goes on (rejoin), waiting for a slot to be free."""
from dist_protocol.messages import TaskFinished, TaskSeceded
from dist_worker.events import (ForgottenRunEnded, ForgottenRunSeceded, RejoinRequested,
                                ReplaceThread, RestartRequested, Resume, Seceded, SendToCenter)


def test_a_seceded_task_gives_its_slot_to_the_next_ready_task(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("parent")
    assert worker.compute("child") == []

    out = worker(Seceded("parent"))

    assert out == [SendToCenter(TaskSeceded(key="parent")), worker.execute("child")]
    assert worker.state_of("parent") == "long-running"
    assert worker.state.executing == {"child"}


def test_rejoin_waits_for_a_free_slot_and_goes_before_ready_tasks(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("parent")
    worker.compute("child")
    worker(Seceded("parent"))
    worker.compute("other")

    assert worker(RejoinRequested("parent")) == []  # the child holds the only slot

    out = worker.succeeded("child")
    assert out[1:] == [Resume("parent")]  # ahead of "other", which stays ready
    assert worker.state_of("parent") == "executing"
    assert worker.state_of("other") == "ready"
    assert worker.state.seceded == set()


def test_rejoin_with_a_slot_free_resumes_at_once(make_worker):
    worker = make_worker(nthreads=2)
    worker.compute("parent")
    worker(Seceded("parent"))
    assert worker(RejoinRequested("parent")) == [Resume("parent")]
    assert worker.state.executing == {"parent"}


def test_a_task_that_ends_while_seceded_is_reported_and_frees_nothing_twice(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("parent")
    worker(Seceded("parent"))
    worker.compute("child")

    out = worker.succeeded("parent", value=5)

    assert [type(i) for i in out] == [SendToCenter]
    assert isinstance(out[0].message, TaskFinished)
    assert worker.state.executing == {"child"} and worker.state.seceded == set()


def test_a_seceded_task_is_not_freed_nor_given_up_to_a_thief(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("parent")
    worker(Seceded("parent"))
    worker.free("parent")
    assert worker.state_of("parent") == "long-running"
    out = worker.steal("parent")
    assert out[0].message.kept == ["parent"]


def test_rejoin_of_a_task_that_never_seceded_resumes_it(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    assert worker(RejoinRequested("a")) == [Resume("a")]
    assert worker(Seceded("unknown")) == []

def test_a_task_freed_while_it_runs_gives_its_slot_to_the_next_ready_task(make_worker):
    # The center counts the slot free once it forgets the task; a task that never ends
    # would otherwise hold it, and the tasks queued behind it, for good.
    worker = make_worker(nthreads=1)
    worker.compute("stuck")
    worker.compute("next")

    out = worker.free("stuck")

    assert out == [ReplaceThread("stuck"), worker.execute("next")]
    assert worker.state_of("stuck") == "long-running"
    assert worker.state.executing == {"next"} and worker.state.seceded == {"stuck"}
    out = worker.succeeded("stuck", value=5)  # it ended after all
    assert worker.state.seceded == set() and worker.state.executing == {"next"}


def test_a_seceded_task_freed_while_it_runs_replaces_no_thread(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("parent")
    worker(Seceded("parent"))
    assert worker.free("parent") == []


def test_a_key_a_restart_forgot_runs_again_apart_from_its_forgotten_run(make_worker):
    # Keyed by key alone, the forgotten run of "a" and its new run shared the entries of
    # ``seceded``, ``executing`` and ``rejoining``: the forgotten run's outcome was taken for
    # the new one's, and two seceded runs rejoining waited on one entry.
    worker = make_worker(nthreads=2)
    worker.compute("a")
    worker(Seceded("a"))  # the first run of "a" gives its slot back...
    worker.compute("b")  # ... which "b" takes
    worker(RestartRequested("the cluster restarts"))
    assert worker.state.forgotten_slots == 1  # b's thread is busy still; a's holds no slot

    assert worker.compute("a") == [worker.execute("a")]  # the second run, on the free slot
    assert worker(Seceded("a")) == [SendToCenter(TaskSeceded(key="a"))]
    assert worker.compute("c") == [worker.execute("c")]
    assert worker(RejoinRequested("a")) == []  # c and the forgotten b hold both slots
    # The first run ends: nothing of it reaches the center, nor frees a slot it did not hold.
    assert worker(ForgottenRunEnded("a", held_slot=False)) == []
    assert worker.state_of("a") == "long-running"
    # The forgotten b ends: its slot goes to the second run of "a", rejoining.
    assert worker(ForgottenRunEnded("b", held_slot=True)) == [Resume("a")]
    out = worker.succeeded("a", value=2)
    assert [type(i) for i in out] == [SendToCenter] and out[0].message.key == "a"
    assert worker.state.data["a"] == 2 and worker.state.forgotten_slots == 0


def test_a_forgotten_run_that_secedes_gives_its_slot_back(make_worker):
    worker = make_worker(nthreads=1)
    worker.compute("a")
    worker(RestartRequested("the cluster restarts"))
    assert worker.compute("b") == []  # the forgotten run holds the only slot
    assert worker(ForgottenRunSeceded("a")) == [worker.execute("b")]
    assert worker(ForgottenRunEnded("a", held_slot=False)) == []
    assert worker.state.forgotten_slots == 0
