"""The number of key prefixes the center counts (dashboard progress, /metrics) is capped.

Prometheus keeps a series per label value: keys named one per row (``key=f"row_{i}"``) made
20,000 ``prefix`` series after two maps, and as many counters in the center.
"""
from __future__ import annotations

import re

import pytest
from dist_center.dashboard import prometheus, views
from dist_center.events import ClientConnected, ClientSent, WorkerJoined, WorkerSent
from dist_center.records import MAX_PREFIXES, OTHER_PREFIX, PrefixNames
from dist_center.state import CenterState
from dist_protocol.messages import RegisterWorker, Submit, TaskErred, TaskFinished, TaskSpec

pytestmark = pytest.mark.timeout(30)


def run_keys(state: CenterState, keys: list[str], fail: set[str] = frozenset()) -> None:
    """Submit ``keys`` and have the one worker finish (or fail) each as it is handed out."""
    state.handle(ClientSent("client", Submit(tasks=[TaskSpec(key=key, function="math:sqrt")
                                                   for key in keys])))
    while True:
        running = [key for key, ts in state.tasks.items() if ts.state == "processing"]
        if not running:
            break
        for key in running:
            if key in fail:
                message = TaskErred(key=key, exception_type="ValueError", message="no")
            else:
                message = TaskFinished(key=key, nbytes=8, start=1.0, stop=1.5)
            state.handle(WorkerSent("tcp-a:1", message))
        state.validate()


def cluster(limit: int) -> CenterState:
    state = CenterState()
    state.prefix_of = PrefixNames(limit)
    state.handle(ClientConnected("client"),
                 WorkerJoined(RegisterWorker(address="tcp-a:1", nthreads=4, name="a")))
    return state


def prefix_labels(text: str, family: str) -> dict[str, float]:
    return {match[1]: float(match[2]) for match in
            re.finditer(rf'^{family}{{prefix="([^"]*)"}} (\S+)$', text, re.M)}


def test_prefixes_past_the_cap_fold_into_one_label():
    state = cluster(limit=5)
    run_keys(state, [f"inc-{i:032x}" for i in range(3)])
    run_keys(state, [f"row_{i}" for i in range(200)], fail={"row_7", "row_150"})

    text = prometheus.render(state, started=0.0)
    finished = prefix_labels(text, "dist_tasks_finished_total")
    # inc, then the first four row_ keys; every later one counts under the one label
    assert finished == {"inc": 3, "row_0": 1, "row_1": 1, "row_2": 1, "row_3": 1,
                        OTHER_PREFIX: 194}  # 196 past the cap, 2 of them erred
    assert prefix_labels(text, "dist_tasks_erred_total") == {OTHER_PREFIX: 2}
    assert set(prefix_labels(text, "dist_task_compute_seconds_total")) == set(finished)
    assert len(state.task_counts) <= 6 and len(state.finished_by_prefix) <= 6
    assert {row["prefix"] for row in views.progress_rows(state)} <= set(finished)


def test_a_prefix_counted_once_keeps_its_label_and_a_late_one_stays_folded():
    state = cluster(limit=2)
    run_keys(state, ["a-1", "b-1", "c-1"])
    run_keys(state, ["a-2", "c-2"])
    finished = prefix_labels(prometheus.render(state, started=0.0),
                             "dist_tasks_finished_total")
    assert finished == {"a": 2, "b": 1, OTHER_PREFIX: 2}


def test_the_default_cap_and_the_label_cannot_be_a_function_name():
    assert MAX_PREFIXES == 1000
    assert not OTHER_PREFIX.isidentifier()
    names = PrefixNames()
    assert [names(f"f{i}-{i}") for i in range(MAX_PREFIXES)] == [
        f"f{i}" for i in range(MAX_PREFIXES)]
    assert names("one-more-0") == OTHER_PREFIX and names("f0-x") == "f0"
