"""The memory monitor's decisions, on a stand-in worker: RSS in, spills and pauses out."""
from __future__ import annotations

import logging

import pytest
from dist_worker.memory import MemoryPolicy
from dist_worker.monitor import Monitor
from dist_worker.store import DataStore

MB = 10**5  # sizes below are tenths of what they say: a test need not write gigabytes


class FakeWorker:
    """What the monitor uses of a worker: its policy, store, pause switch and center."""

    def __init__(self, tmp_path, policy: MemoryPolicy):
        self.memory_policy = policy
        self.memory_limit = policy.limit
        self.nthreads = 1
        self.closing = False
        self.store = DataStore(target=policy.bytes_at("target"), directory=str(tmp_path))
        self.paused = False
        self.above_target = False
        self.sent = []

    def handle(self, *events) -> None:
        for event in events:
            self.paused = event.paused  # MemoryPressureChanged: the only event it is sent
            self.above_target = event.above_target

    def send_center(self, *messages) -> None:
        self.sent.extend(messages)

    def metrics(self) -> dict:
        return {"paused": self.paused}


@pytest.fixture
def worker(tmp_path):
    made = FakeWorker(tmp_path, MemoryPolicy(limit=1000 * MB))
    yield made
    made.store.close()


def monitor_of(worker, rss_after_spill=None) -> Monitor:
    monitor = Monitor(worker)
    monitor.rss = lambda: rss_after_spill  # the RSS read again after spilling
    return monitor


def test_past_the_spill_threshold_values_spill_until_the_process_is_under_target(
        worker, monkeypatch):
    monkeypatch.setattr("dist_worker.monitor.SPILL_BUDGET", 60.0)  # a slow disk: no time limit
    for i in range(5):
        worker.store[f"k{i}"] = b"x" * (100 * MB)  # 500 MB managed: under the 600 MB target
    monitor = monitor_of(worker, rss_after_spill=550 * MB)
    monitor.check_memory(750 * MB)  # the process is past 700 MB: 150 MB must go
    assert worker.store.spilled >= 150 * MB
    assert worker.store.in_memory("k4") and not worker.store.in_memory("k0")
    assert not worker.paused


def test_past_pause_the_worker_pauses_and_resumes_below_it(worker):
    monitor = monitor_of(worker, rss_after_spill=850 * MB)
    monitor.check_memory(850 * MB)  # unmanaged: nothing to spill
    assert worker.paused and worker.sent  # the center hears at once
    monitor.check_memory(500 * MB)
    assert not worker.paused


def test_the_worker_hears_when_memory_crosses_the_target(worker):
    monitor = monitor_of(worker, rss_after_spill=650 * MB)
    monitor.check_memory(650 * MB)  # above the 600 MB target, below spill and pause
    assert worker.above_target and not worker.paused
    monitor.check_memory(500 * MB)
    assert not worker.above_target
    monitor.rss = lambda: 850 * MB  # unmanaged: nothing spilled or released brings it down
    monitor.check_memory(850 * MB)  # paused, and above the target with it
    assert worker.paused and worker.above_target


def test_a_threshold_turned_off_does_nothing(tmp_path):
    worker = FakeWorker(tmp_path, MemoryPolicy(limit=1000 * MB, pause=None, spill=None))
    worker.store["a"] = b"x" * (100 * MB)
    monitor_of(worker, rss_after_spill=900 * MB).check_memory(900 * MB)
    assert not worker.paused and worker.store.spilled == 0
    worker.store.close()


def test_when_spilling_fails_the_worker_pauses_past_its_target(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    worker = FakeWorker(tmp_path, MemoryPolicy(limit=1000 * MB))
    worker.store.slow.directory = str(blocker / "spill")
    for i in range(7):
        worker.store[f"k{i}"] = b"x" * (100 * MB)  # 700 MB: past the target, nowhere to go
    monitor_of(worker, rss_after_spill=750 * MB).check_memory(750 * MB)
    assert worker.store.spill_suspended and worker.paused
    assert all(worker.store[f"k{i}"] == b"x" * (100 * MB) for i in range(7))
    worker.store.close()


def test_past_terminate_without_a_nanny_it_only_says_so_once(worker, caplog, monkeypatch):
    monkeypatch.delenv("DIST_NANNY_PID", raising=False)
    caplog.set_level(logging.ERROR, "dist.worker")
    monitor = monitor_of(worker, rss_after_spill=990 * MB)
    monitor.check_memory(990 * MB)
    monitor.check_memory(990 * MB)
    assert [r.getMessage() for r in caplog.records if "no nanny" in r.getMessage()] != []
    assert len([r for r in caplog.records if "no nanny" in r.getMessage()]) == 1
    assert worker.paused
