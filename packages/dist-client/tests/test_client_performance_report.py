"""The performance report's page, from task stream records (no cluster)."""
from __future__ import annotations

import pytest
from dist_client.performance_report import (NO_CODE, calling_code, performance_report, render,
                                            thread_lanes)


def run(key, worker, start, stop, *transfers):
    startstops = [{"action": "transfer", "start": a, "stop": b, "source": source}
                  for source, a, b in transfers]
    startstops.append({"action": "compute", "start": start, "stop": stop})
    return {"key": key, "worker": worker, "status": "OK", "nbytes": 8,
            "startstops": startstops}


def test_runs_fill_as_many_lanes_as_computed_at_once_fetches_aside():
    records = [run("a-1", "w1", 0, 2), run("b-1", "w1", 1, 3, ("w2", 0, 1)),
               run("c-1", "w1", 2, 4, ("w2", 0.5, 2)), run("d-1", "w2", 0, 1)]
    lanes = thread_lanes(records)
    assert [[r["key"] for r in lane] for lane in lanes["w1"]] == [["a-1", "c-1"], ["b-1"]]
    assert [[r["key"] for r in lane] for lane in lanes["w2"]] == [["d-1"]]


def test_page_sums_by_prefix_and_escapes_what_it_shows():
    records = [run("inc-1", "w1", 0, 2), run(("sum-aggregate-ab", 0), "w2", 1, 1.5,
                                              ("w1", 0.5, 1))]
    page = render(records, 100.0, 104.0, "x = '<b>'")
    assert "<td>4.000 s</td><td>2</td><td>2.500 s</td><td>0.500 s</td><td>0</td>" in page
    assert "<td>inc</td><td>1</td>" in page and "<td>sum-aggregate</td><td>1</td>" in page
    assert "<td>w1</td><td>w2</td><td>1</td><td>0.500 s</td>" in page
    assert "x = &#x27;&lt;b&gt;&#x27;" in page and page.count("<rect") == 3
    assert "No task ran." in render([], 0.0, 0.0, "")


def test_bad_arguments_are_refused_at_once():
    with pytest.raises(TypeError, match="filename must be a path"):
        performance_report(filename=3)
    with pytest.raises(TypeError, match="stacklevel must be an int"):
        performance_report(stacklevel="1")
    with pytest.raises(ValueError, match="mode must be one of"):
        performance_report(mode="pdf")
    with pytest.raises(TypeError, match="storage_options must be a dict"):
        performance_report(storage_options=[1])


def test_the_code_shown_is_that_of_the_frame_at_stacklevel():
    def report_exit(stacklevel):  # stands for ``__exit__``: its caller is level 1
        return calling_code(stacklevel)

    assert "def test_the_code_shown_is_that_of_the_frame_at_stacklevel" in report_exit(1)
    assert report_exit(10**6) == NO_CODE  # deeper than the stack: nothing to show, no error


def test_runs_the_center_no_longer_had_are_counted_on_the_page():
    assert "3 earlier runs of the block are not in this report" in render(
        [run("inc-1", "w1", 0, 1)], 0.0, 1.0, "", left_out=3)
    assert "not in this report" not in render([run("inc-1", "w1", 0, 1)], 0.0, 1.0, "")
