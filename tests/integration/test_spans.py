"""dask's span between real processes: the tasks sent inside a span block are recorded as its
own and its enclosing spans', and dask's annotation reads as in dask."""
from __future__ import annotations

import pytest
from dist_client import span

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 60


def inc(x):
    return x + 1


def test_the_tasks_sent_in_a_span_belong_to_it_and_to_the_spans_around_it(cluster):
    dask = pytest.importorskip("dask")
    e = cluster.executor()
    before = e.submit(inc, 0)
    with span("workflow") as outer:
        assert dask.get_annotations()["span"]["name"] == ("workflow",)
        first = e.submit(inc, 1)
        with span("load", "clean") as inner:
            annotation = dask.get_annotations()["span"]
            assert annotation["name"] == ("workflow", "load", "clean")
            assert annotation["ids"][0] == outer and annotation["ids"][-1] == inner
            mapped = e.map(inc, range(100, 103))
            computed = dask.delayed(inc)(10)
            assert computed.compute(scheduler=e.get) == 11
        last = e.submit(inc, 2)
    after = e.submit(inc, 3)
    assert e.gather([before, first, *mapped, last, after], timeout=RESULT_TIMEOUT)

    inner_keys = e.span_keys(inner)
    assert inner_keys[:3] == [f.key for f in mapped] and len(inner_keys) == 4  # and the graph's
    assert e.span_keys(outer) == [first.key, *inner_keys, last.key]
    assert before.key not in e.span_keys(outer) and after.key not in e.span_keys(outer)
    assert "span" not in dask.get_annotations()
    assert e.span_keys("no-such-span") == []
    with pytest.raises(ValueError, match="at least one span tag"):
        with span():
            pass
