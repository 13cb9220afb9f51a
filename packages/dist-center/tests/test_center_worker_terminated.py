"""A worker stopped by a SIGTERM its nanny did not send names the tasks that may have sent it
(feature task-terminated): its death counts against them, also against one that had already
finished, so that a task that terminates its own worker fails as KilledWorker instead of
stopping worker after worker while its value is wanted."""
from dist_protocol.messages import TaskErred, WorkerTerminated


def terminated(center, address, keys):
    center.worker_sent(address, WorkerTerminated(keys=keys))
    return center.leave(address, reason="connection closed")


def test_a_task_that_terminates_its_worker_after_finishing_fails_after_three_deaths(
        center, match):
    center.join("w")
    center.submit("kill")
    for deaths in (1, 2):
        center.finished("w", "kill")
        assert terminated(center, "w", ["kill"]) == []
        assert center.task("kill").died_on == ("w",) * deaths
        assert center.join("w")[-1] == ("w", center.compute("kill"))
    center.finished("w", "kill")

    out = terminated(center, "w", ["kill"])

    assert out == [("alice", match(
        TaskErred, key="kill", exception_type="KilledWorker",
        message="task kill was running on workers that died 3 times: w, w, w (the last: "
                "connection closed, by a SIGTERM that its worker says it may have sent); "
                "giving up"))]
    assert center.state_of("kill") == "erred"
    center.join("w")
    assert center.processing("w") == []  # the loop has stopped


def test_a_named_task_still_running_counts_once(center):
    center.join("w")
    center.submit("kill")

    terminated(center, "w", ["kill"])

    assert center.task("kill").died_on == ("w",)


def test_only_the_named_tasks_lost_with_the_worker_count(center):
    center.join("w")
    center.submit("kill", "other")
    center.finished("w", "kill")
    center.finished("w", "other")

    terminated(center, "w", ["kill"])

    assert (center.task("kill").died_on, center.task("other").died_on) == (("w",), ())


def test_a_worker_that_unregisters_counts_nothing_against_what_it_named(center):
    # (a nanny's SIGTERM, as an operator's: the worker says goodbye; nothing is blamed)
    center.join("w")
    center.submit("kill")
    center.finished("w", "kill")
    center.worker_sent("w", WorkerTerminated(keys=["kill"]))

    center.leave("w", reason="unregistered", graceful=True)

    assert center.task("kill").died_on == ()


def test_keys_the_center_does_not_know_are_ignored(center):
    center.join("w")
    center.submit("x")
    center.finished("w", "x")

    terminated(center, "w", ["nothing-of-that-name"])

    assert center.task("x").died_on == ()
