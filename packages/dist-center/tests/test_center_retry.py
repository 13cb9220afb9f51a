"""``retry``: erred tasks run again, with the erred inputs behind them, their retries afresh."""
import pytest
from dist_protocol.messages import KeyInMemory, Retry, TaskErred


def errors(out, key):
    return [m for _, m in out if isinstance(m, TaskErred) and m.key == key]


def test_a_retried_task_runs_again_and_its_client_hears_of_it(center):
    center.join("w1")
    center.submit(center.spec("a", retries=1))
    center.erred("w1", "a")
    assert center.state_of("a") == "processing"  # its one retry
    out = center.erred("w1", "a")
    assert errors(out, "a") and center.state_of("a") == "erred"

    out = center.client_sent(Retry(keys=["a"]))

    assert out == [("w1", center.compute("a"))]
    assert center.task("a").error is None
    center.erred("w1", "a")
    assert center.state_of("a") == "processing"  # the retries of its spec, afresh
    assert center.finished("w1", "a") == [
        ("alice", KeyInMemory(key="a", nbytes=8, type="int", workers=["w1"]))]


def test_retrying_a_dependent_runs_the_erred_input_behind_it_first(center):
    center.join("w1")
    center.submit(center.spec("a"), center.spec("b", "a"))
    out = center.erred("w1", "a")
    assert errors(out, "a") and errors(out, "b")
    assert center.state_of("b") == "erred"

    out = center.client_sent(Retry(keys=["b"]))

    assert out == [("w1", center.compute("a"))]
    assert center.state_of("b") == "waiting"
    center.finish("a")
    assert center.state_of("b") == "processing"


@pytest.mark.parametrize("key", ["a", "unknown"])
def test_keys_not_erred_or_not_wanted_are_ignored(center, key):
    center.join("w1")
    center.submit("a")
    center.finish("a")
    center.connect("bob")
    center.submit(center.spec("c"), client="bob")
    center.erred("w1", "c")

    assert center.client_sent(Retry(keys=[key, "c"])) == []  # alice does not want c
    assert center.state_of("c") == "erred"


def rescheduled(key):
    """What a worker sends for a task that raised ``Reschedule``."""
    return TaskErred(key=key, exception_type="Reschedule", message="", traceback="tb",
                     reschedule=True)


def test_a_rescheduled_task_is_placed_again_without_spending_a_retry(center):
    center.join("w1")
    center.join("w2")
    center.submit(center.spec("busy"), center.spec("a", retries=1))
    running_a_on = center.task("a").processing_on

    out = center.worker_sent(running_a_on, rescheduled("a"))

    # The least busy worker again: the one not running "busy" (as a new task would be placed).
    assert out == [(running_a_on, center.compute("a"))]
    assert center.state_of("a") == "processing" and center.task("a").retries_left == 1
    assert center.state.task_stream_count == 0  # not a failed run
    center.worker_sent(running_a_on, rescheduled("a"))
    center.worker_sent(running_a_on, rescheduled("a"))
    center.erred(running_a_on, "a")
    assert center.state_of("a") == "processing"  # its one retry, still there
    assert center.finished(running_a_on, "a") == [
        ("alice", KeyInMemory(key="a", nbytes=8, type="int", workers=[running_a_on]))]


def test_a_reschedule_of_a_task_the_worker_no_longer_runs_is_no_news(center):
    center.join("w1")
    center.join("w2")
    center.submit("a")
    assert center.worker_sent("w2" if center.task("a").processing_on == "w1" else "w1",
                              rescheduled("a")) == []
    assert center.state_of("a") == "processing"
