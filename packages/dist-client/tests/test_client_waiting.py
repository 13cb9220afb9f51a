"""wait and as_completed behave like their concurrent.futures namesakes (no cluster needed)."""
import threading
from concurrent.futures import CancelledError
from traceback import extract_tb

import pytest
from dist_client import FIRST_COMPLETED, FIRST_EXCEPTION, as_completed, wait



def finish_later(f, delay=0.01):
    threading.Timer(delay, lambda: f.keystate.finish(1, "int", ["w"])).start()


def test_wait_all_and_first_completed(make_future):
    a, b = make_future("wa"), make_future("wb")
    finish_later(a)
    done, not_done = wait([a, b], return_when=FIRST_COMPLETED, timeout=5)
    assert done == {a} and not_done == {b}
    finish_later(b)
    done, not_done = wait([a, b], timeout=5)
    assert done == {a, b} and not not_done


def test_wait_timeout_returns_what_is_done(make_future):
    a = make_future("wt")
    done, not_done = wait([a], timeout=0.05)
    assert not done and not_done == {a}


def test_wait_first_exception(make_future):
    a, b = make_future("we1"), make_future("we2")
    a.keystate.fail(ValueError("x"))
    done, _ = wait([a, b], return_when=FIRST_EXCEPTION, timeout=5)
    assert a in done


def waited_in_a_thread(*args, **kwargs):
    """``wait(*args, **kwargs)`` without a timeout, in a thread given ten seconds to return."""
    results = []
    thread = threading.Thread(target=lambda: results.append(wait(*args, **kwargs)))
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "wait did not return"
    return results[0]


def test_wait_returns_at_once_when_its_condition_held_before_it_was_called(make_future):
    done_a, failed, never = make_future("wn1"), make_future("wn2"), make_future("wn3")
    done_a.keystate.finish(1, "int", ["w"])
    failed.keystate.fail(ValueError("x"))
    try:
        assert waited_in_a_thread([done_a, never], return_when=FIRST_COMPLETED) == \
            ({done_a}, {never})
        assert waited_in_a_thread([failed, never], return_when=FIRST_EXCEPTION) == \
            ({failed}, {never})
    finally:
        never.keystate.finish(1, "int", ["w"])  # frees a thread still waiting, if any


def test_wait_first_exception_returns_when_one_fails_while_others_finish(make_future):
    futures = [make_future(f"wx{i}") for i in range(50)]
    for f in futures[:20]:
        finish_later(f)
    threading.Timer(0.05, lambda: futures[30].keystate.fail(ValueError("x"))).start()
    done, not_done = waited_in_a_thread(futures, return_when=FIRST_EXCEPTION)
    assert futures[30] in done and not_done
    for f in not_done:
        f.keystate.finish(1, "int", ["w"])


def test_as_completed_in_completion_order_and_add_while_iterating(make_future):
    a, b = make_future("ac1"), make_future("ac2")
    finish_later(b, 0.01)
    finish_later(a, 0.05)
    seen = []
    ac = as_completed([a, b], timeout=5)
    for f in ac:
        seen.append(f.key)
        if f.key == "ac1":
            c = make_future("ac3")
            ac.add(c)
            finish_later(c)
    assert seen == ["ac2", "ac1", "ac3"]


def test_as_completed_raises_errors_with_results(make_future):
    a = make_future("acr")
    a.keystate.fail(KeyError("gone"))
    with pytest.raises(KeyError):
        list(as_completed([a], with_results=True, timeout=5))
    [(future, (kind, error, _))] = list(as_completed([a], with_results=True,
                                                     raise_errors=False, timeout=5))
    assert future is a and kind is KeyError and isinstance(error, KeyError)


def test_as_completed_with_results_yields_a_cancelled_future_as_dask_does(make_future):
    cancelled, failed = make_future("acc1"), make_future("acc2")
    cancelled.keystate.fail(CancelledError("acc1 was cancelled"), status="cancelled")
    [(future, value)] = list(as_completed([cancelled], with_results=True, timeout=5))
    assert future is cancelled and isinstance(value, CancelledError)
    failed.keystate.fail(ValueError("bad"), "Traceback (most recent call last):\n"
                                            '  File "task.py", line 3, in f\nValueError: bad\n')
    pairs = dict(as_completed([cancelled, failed], with_results=True, raise_errors=False,
                              timeout=5))
    assert isinstance(pairs[cancelled], CancelledError)
    kind, error, traceback = pairs[failed]
    assert kind is ValueError and str(error) == "bad"
    assert [frame.name for frame in extract_tb(traceback)] == ["f"]


def test_as_completed_timeout_counts_from_the_call(make_future):
    """As ``concurrent.futures.as_completed``'s: not from each ``next()``."""
    a, late = make_future("act1"), make_future("act2")
    ac = as_completed([a, late], timeout=1.0)
    finish_later(a, 1.1)  # (started after as_completed: when it is done, the time is up)
    wait([a], timeout=10)
    assert next(ac) is a
    finish_later(late, 0.5)  # within a second of this next(), not of as_completed()
    with pytest.raises(TimeoutError):
        next(ac)
    assert wait([late], timeout=10).done == {late}


def test_as_completed_shows_how_many_wait_and_how_many_are_done(make_future):
    a, b = make_future("acr1"), make_future("acr2")
    ac = as_completed([a, b])
    assert repr(ac) == "<as_completed: waiting=2 done=0>"
    a.keystate.finish(1, "int", ["w"])
    assert repr(ac) == "<as_completed: waiting=1 done=1>"
    assert next(ac) is a and repr(ac) == "<as_completed: waiting=1 done=0>"
    b.keystate.finish(1, "int", ["w"])


@pytest.mark.parametrize("forever", [float("inf"), 1e10], ids=["inf", "1e10"])
def test_a_timeout_longer_than_a_thread_can_block_waits_without_one(make_future, forever):
    # (written to mean "no limit": the lock the thread sleeps on raised OverflowError)
    a, b = make_future("wi1"), make_future("wi2")
    finish_later(a)
    assert wait([a], timeout=forever).done == {a}
    finish_later(b)
    assert list(as_completed([b], timeout=forever)) == [b]
