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
