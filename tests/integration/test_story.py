"""A key's story, end to end: ``Executor.story`` and the dashboard's key page tell what the
center and each worker that touched a key did with it, and why (the stimulus of each move)."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

pytestmark = pytest.mark.timeout(60)


def inc(x):
    return x + 1


def moves(entries, key, worker):
    return [(e["start"], e["finish"]) for e in entries if e["key"] == key and e["worker"] == worker]


def test_a_story_spans_the_center_and_every_worker_that_touched_the_key(processes):
    center = processes.start_center(dashboard=True)
    first = processes.start_worker(center.address)
    second = processes.start_worker(center.address)
    with processes.executor(center.address) as e:
        x = e.submit(inc, 1, workers=[first.address])
        y = e.submit(inc, x, workers=[second.address])  # so the second worker fetches x
        assert y.result(timeout=30) == 3

        story = e.story(x)
        # The dashboard's page for the key tells the same story (it asks the workers too).
        url = center.wait_for("Dashboard at ")
        query = urllib.parse.quote(x.key)
        with urllib.request.urlopen(f"{url}api/story?key={query}", timeout=10) as response:
            answer = json.load(response)
        with urllib.request.urlopen(f"{url}key?key={query}", timeout=10) as response:
            page = response.read().decode()

    assert {e["key"] for e in story} == {x.key}
    assert moves(story, x.key, "") == [("released", "waiting"), ("waiting", "processing"),
                                       ("processing", "memory")]
    assert moves(story, x.key, first.address) == [("released", "ready"),
                                                  ("ready", "executing"),
                                                  ("executing", "memory")]
    assert moves(story, x.key, second.address) == [("fetch", "flight"), ("flight", "memory")]
    center_stimuli = [e["stimulus_id"] for e in story if e["worker"] == ""]
    assert center_stimuli[0].startswith("submit-")
    assert center_stimuli[-1].startswith("task-finished-")
    times = [e["time"] for e in story]
    assert times == sorted(times)

    assert answer["task"]["state"] == "memory"
    assert moves(answer["entries"], x.key, second.address) == [("fetch", "flight"),
                                                               ("flight", "memory")]
    assert x.key in page and first.address in page and second.address in page
