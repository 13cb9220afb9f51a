"""The memory monitor's decisions, on a stand-in worker: RSS in, spills and pauses out."""
from __future__ import annotations

import logging
import mmap
import os
import random
import sys

import pytest
from dist_worker.memory import MemoryPolicy, format_bytes
from dist_protocol.messages import RestartingForMemory
from dist_worker.monitor import DROPPING_GRACE, Monitor, blame_for_restart
from dist_worker.store import DataStore
from dist_worker.taskmemory import MAX_KINDS as REMEMBERED_KINDS
from dist_worker.taskmemory import TaskMemory, task_kind

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
        self.reading_inputs = 0  # bytes of tasks' inputs being read back on a thread
        self.above_target = False
        self.sent = []

    def handle(self, *events) -> None:
        for event in events:
            self.paused = event.paused  # MemoryPressureChanged: the only event it is sent
            self.above_target = event.above_target

    def send_center(self, *messages) -> None:
        self.sent.extend(messages)

    def flush_center(self) -> None:
        self.sent.append("flushed")

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


def test_an_input_read_back_for_a_task_spills_nothing_for_its_own_memory(worker,
                                                                           monkeypatch):
    """A look in the middle of a task's input read back on a thread: room was made for the
    input under the target before its read began, so the memory it takes meanwhile is no
    reason to spill the values in memory (the next tasks' inputs, read back again at once)."""
    monkeypatch.setattr("dist_worker.monitor.SPILL_BUDGET", 60.0)
    for i in range(5):
        worker.store[f"k{i}"] = b"x" * (100 * MB)  # 500 MB managed: under the 600 MB target
    worker.reading_inputs = 100 * MB  # its room made: 600 MB with it, the target
    monitor = monitor_of(worker, rss_after_spill=750 * MB)
    monitor.check_memory(750 * MB)  # past spill (700 MB) only by the input being read
    assert worker.store.spilled == 0 and not worker.paused
    worker.reading_inputs = 0  # the same memory, no read under way: unmanaged, it spills
    monitor.check_memory(750 * MB)
    assert worker.store.spilled >= 150 * MB


def test_past_pause_the_worker_pauses_and_resumes_below_it(worker):
    monitor = monitor_of(worker, rss_after_spill=850 * MB)
    monitor.check_memory(850 * MB)  # unmanaged: nothing to spill
    assert worker.paused and worker.sent  # the center hears at once
    monitor.check_memory(500 * MB)
    assert not worker.paused


def test_memory_nothing_can_spill_is_warned_of_once_in_five_minutes(worker, caplog):
    caplog.set_level(logging.WARNING, "dist.worker")
    now = [0.0]
    monitor = monitor_of(worker, rss_after_spill=750 * MB)
    monitor.clock = lambda: now[0]
    for _ in range(3):  # every task of a workload takes the process past spill, and back
        monitor.check_memory(750 * MB)
        now[0] += 1
        monitor.check_memory(500 * MB)

    def warnings():
        return sum("is unmanaged" in r.getMessage() for r in caplog.records)
    assert warnings() == 1
    now[0] += 300
    monitor.check_memory(750 * MB)
    assert warnings() == 2


def test_a_value_whose_write_has_begun_is_counted_once_in_the_unmanaged_warning(
        worker, caplog, monkeypatch, tmp_path):
    """A large value's write, begun on the writer's thread, leaves it in memory (in
    ``managed``) until the file is whole: the memory the process holds besides the values is
    the RSS less what they weighed, not less that and the bytes spilled too."""
    class WritesLater:
        def submit(self, write, done) -> None:
            pass  # (the write has begun and not ended while the monitor looks)

        def close(self) -> None:
            pass

    monkeypatch.setattr("dist_worker.store.OFF_LOOP_FROM", 50 * MB)
    caplog.set_level(logging.WARNING, "dist.worker")
    worker.store.close()
    worker.store = DataStore(target=worker.memory_policy.bytes_at("target"),
                             directory=str(tmp_path),
                             writer=WritesLater())
    worker.store["big"] = b"x" * (100 * MB)
    weight = worker.store.managed
    monitor_of(worker, rss_after_spill=850 * MB).check_memory(850 * MB)
    assert worker.store.writing == weight  # being written, still in memory
    warned = [r.getMessage() for r in caplog.records if "is unmanaged" in r.getMessage()]
    assert len(warned) == 1 and f"{format_bytes(850 * MB - weight)} is unmanaged" in warned[0]


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
    monitor = monitor_of(worker, rss_after_spill=1010 * MB)
    monitor.check_memory(1010 * MB)  # past the limit itself: at once
    monitor.check_memory(1010 * MB)
    assert [r.getMessage() for r in caplog.records if "no nanny" in r.getMessage()] != []
    assert len([r for r in caplog.records if "no nanny" in r.getMessage()]) == 1
    assert worker.paused


class Restarted(Exception):
    pass


@pytest.fixture
def restarts(monkeypatch):
    """Each restart the monitor orders, instead of the process exiting."""
    calls = []

    def exit_(code):
        calls.append(code)
        raise Restarted

    monkeypatch.setenv("DIST_NANNY_PID", "1")
    monkeypatch.setattr("dist_worker.monitor.os._exit", exit_)
    return calls


def test_past_terminate_results_spill_before_the_worker_restarts(worker, restarts):
    for i in range(4):
        worker.store[f"k{i}"] = b"x" * (100 * MB)  # 400 MB of results, under the target
    monitor = monitor_of(worker)
    # Releasing memory alone does not bring it down; spilling the results does.
    monitor.rss = lambda: 600 * MB if worker.store.spilled else 980 * MB
    monitor.check_memory(980 * MB)
    assert restarts == [] and worker.store.spilled >= 300 * MB
    assert all(worker.store[f"k{i}"] == b"x" * (100 * MB) for i in range(4))


def test_a_short_peak_under_the_limit_is_no_restart_and_a_lasting_one_is(worker, restarts):
    now = [100.0]
    monitor = monitor_of(worker, rss_after_spill=970 * MB)  # unmanaged: nothing to spill
    monitor.clock = lambda: now[0]
    monitor.check_memory(970 * MB)
    now[0] += 0.3
    monitor.check_memory(970 * MB)
    assert restarts == [] and worker.paused
    monitor.rss = lambda: 700 * MB  # the task that peaked has finished
    monitor.check_memory(700 * MB)
    now[0] += 0.3
    monitor.rss = lambda: 970 * MB  # a new peak counts from its own start
    monitor.check_memory(970 * MB)
    assert restarts == []
    now[0] += 0.5
    with pytest.raises(Restarted):
        monitor.check_memory(970 * MB)
    assert restarts == [75]


def test_no_restart_under_the_limit_while_values_let_go_of_are_being_dropped(
        worker, restarts, monkeypatch):
    """A value spilled as it was stored held the event loop, and so the monitor's looks,
    while it was written; the first look after found the process past terminate by the value
    on disk but not yet dropped on the disposal thread, and restarted the worker."""
    dropping = [True]
    monkeypatch.setattr(DataStore, "dropping", property(lambda store: dropping[0]))
    now = [100.0]
    monitor = monitor_of(worker, rss_after_spill=970 * MB)  # unmanaged: nothing to spill
    monitor.clock = lambda: now[0]
    monitor.check_memory(970 * MB)
    now[0] += 0.6  # past TERMINATE_AFTER
    monitor.check_memory(970 * MB)
    assert restarts == []
    dropping[0] = False  # dropped, and the process still past terminate: its own memory
    now[0] += 0.1
    with pytest.raises(Restarted):
        monitor.check_memory(970 * MB)


def test_values_still_dropping_put_a_restart_off_only_so_long(worker, restarts, monkeypatch):
    monkeypatch.setattr(DataStore, "dropping", property(lambda store: True))  # a finalizer hangs
    now = [100.0]
    monitor = monitor_of(worker, rss_after_spill=970 * MB)
    monitor.clock = lambda: now[0]
    monitor.check_memory(970 * MB)
    now[0] += DROPPING_GRACE - 0.1
    monitor.check_memory(970 * MB)
    assert restarts == []
    now[0] += 0.2
    with pytest.raises(Restarted):
        monitor.check_memory(970 * MB)
    monitor.rss = lambda: 1001 * MB
    with pytest.raises(Restarted):  # past the limit itself, nothing puts it off
        monitor_of(worker, rss_after_spill=1001 * MB).check_memory(1001 * MB)


def test_past_the_limit_itself_the_worker_restarts_at_once(worker, restarts):
    monitor = monitor_of(worker, rss_after_spill=1001 * MB)
    with pytest.raises(Restarted):
        monitor.check_memory(1001 * MB)
    assert restarts == [75]


def test_a_restart_names_the_value_that_put_the_process_past_terminate(tmp_path, restarts):
    """A value that with the process's own memory passes terminate restarts the worker each
    time it is made again: the monitor names it to the center before it exits, so that the
    center counts the restart against its task."""
    worker = FakeWorker(tmp_path, MemoryPolicy(limit=200 * MB, target=None, spill=None))
    worker.store["big"] = b"x" * (170 * MB)
    worker.store["small"] = b"x" * (1 * MB)
    monitor = monitor_of(worker, rss_after_spill=205 * MB)  # terminate: 190 MB
    with pytest.raises(Restarted):
        monitor.check_memory(205 * MB)  # past the limit itself: at once
    [blamed, flushed] = [m for m in worker.sent if not hasattr(m, "metrics")]
    assert blamed == RestartingForMemory(keys={"big": worker.store.weights["big"]},
                                         memory=205 * MB)
    assert flushed == "flushed"  # written before the process exits


def test_a_restart_names_an_input_a_running_task_reads_back(worker, restarts):
    worker.store["big"] = b"x" * (700 * MB)
    worker.store.spill_to_target()  # the value is on disk
    assert not worker.store.in_memory("big")
    monitor = monitor_of(worker, rss_after_spill=1001 * MB)
    monitor.make_room("read-1", inputs=["big"])  # the task reads it back as it starts
    with pytest.raises(Restarted):
        monitor.check_memory(1001 * MB)
    assert [m.keys for m in worker.sent if isinstance(m, RestartingForMemory)] == [
        {"big": worker.store.weights["big"]}]


def test_with_no_task_running_a_restart_names_a_spilled_value_still_resident(worker, restarts):
    worker.store["big"] = b"x" * (700 * MB)
    worker.store.spill_to_target()  # on disk, its memory not given back yet
    monitor = monitor_of(worker, rss_after_spill=1001 * MB)
    with pytest.raises(Restarted):
        monitor.check_memory(1001 * MB)
    assert [m.keys for m in worker.sent if isinstance(m, RestartingForMemory)] == [
        {"big": worker.store.weights["big"]}]
    worker.sent.clear()
    monitor.task_starting()  # a task runs: the memory may be its own, the spilled value is not
    with pytest.raises(Restarted):
        monitor.check_memory(1001 * MB)
    assert not [m for m in worker.sent if isinstance(m, RestartingForMemory)]


def test_a_restart_blames_the_largest_values_that_make_up_the_excess():
    held = {"a": 50, "b": 300, "c": 120, "d": 10}
    assert blame_for_restart(held, 100) == {"b": 300}
    assert blame_for_restart(held, 400) == {"b": 300, "c": 120}
    # values that together cannot make the excess are not what restarted it
    assert blame_for_restart(held, 481) == {}
    assert blame_for_restart(held, 0) == {}


def test_before_a_task_results_spill_to_leave_room_for_what_its_kind_took(worker):
    for i in range(5):
        worker.store[f"k{i}"] = b"x" * (100 * MB)
    monitor = monitor_of(worker, rss_after_spill=650 * MB)  # above the target, under spill
    monitor.make_room("('read-parquet-1f3e', 0)")  # a kind never seen: nothing to go by
    assert worker.store.spilled == 0
    monitor.task_memory.record("('read-parquet-1f3e', 1)", 300 * MB)  # it took 300 MB
    monitor.make_room("('read-parquet-1f3e', 2)")  # 650 + 300 > the 800 MB pause threshold
    assert 150 * MB <= worker.store.spilled <= 300 * MB and worker.store.in_memory("k4")
    spilled = worker.store.spilled
    monitor.rss = lambda: 450 * MB
    monitor.make_room("('read-parquet-1f3e', 3)")  # 450 + 300 fits under pause
    assert worker.store.spilled == spilled


def test_before_a_task_its_own_inputs_are_not_spilled(worker):
    for i in range(5):
        worker.store[f"k{i}"] = b"x" * (100 * MB)
    monitor = monitor_of(worker, rss_after_spill=900 * MB)  # unmanaged: it stays high
    monitor.task_memory.record("sort-1", 300 * MB)
    monitor.make_room("sort-2", inputs=["k0", "k3"])  # k0 is the least recently used
    assert worker.store.in_memory("k0") and worker.store.in_memory("k3")
    assert not any(worker.store.in_memory(f"k{i}") for i in (1, 2, 4))


def test_a_task_is_measured_by_how_far_the_process_grew_while_it_ran(worker):
    monitor = Monitor(worker)
    started = monitor.task_starting()
    # A fresh anonymous mapping: memory an allocator kept from earlier tests cannot serve it,
    # so the process really grows by the pages touched.
    block = mmap.mmap(-1, 50 * 10**6)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    block.close()
    monitor.after_task("('grow-abc', 0)", started)
    expected = monitor.task_memory.expected("('grow-abc', 1)")
    if sys.platform.startswith("linux"):
        assert 40 * 10**6 <= expected < 200 * 10**6  # the peak, though freed by the end
    assert monitor.task_memory.expected("other-kind") == expected  # unseen: the largest


def test_kinds_of_task_are_the_prefixes_of_their_keys():
    assert task_kind("inc-3f2a") == "inc"
    assert task_kind("('shuffle-group-9e1c', 4)") == "shuffle-group"
    assert task_kind("plain") == "plain"
    memory = TaskMemory()
    for growth in (10, 50, 20, 5, 5, 5, 5):
        memory.record("sort-1", growth)
    assert memory.expected("sort-9") == 20  # the largest of the last five


def test_a_value_larger_than_the_spill_space_does_not_pause_the_worker_for_good(tmp_path):
    worker = FakeWorker(tmp_path, MemoryPolicy(limit=1000 * MB))
    worker.store.slow.max_bytes = 100 * MB  # --max-spill: the value can never go to disk
    worker.store["big"] = os.urandom(750 * MB)  # incompressible, past the target: pinned
    assert "big" in worker.store.pinned
    monitor = monitor_of(worker, rss_after_spill=850 * MB)
    monitor.check_memory(850 * MB)  # past pause, all but 100 MB of it the pinned value
    assert not worker.paused  # no pause could free it: the worker would wait for ever
    # Beside it, 250 MB are left: the worker pauses at 80% of those, 950 MB in all
    monitor.rss = lambda: 960 * MB
    monitor.check_memory(960 * MB)
    assert worker.paused
    monitor.check_memory(850 * MB)
    assert not worker.paused
    del worker.store["big"]  # freed: the usual threshold again
    monitor.check_memory(850 * MB)
    assert worker.paused
    worker.store.close()


def test_pinned_values_move_the_pause_threshold_within_the_limit():
    policy = MemoryPolicy(limit=1000 * MB)
    assert policy.pause_bytes(0) == policy.bytes_at("pause") == 800 * MB
    assert policy.pause_bytes(500 * MB) == 900 * MB
    assert policy.pause_bytes(5000 * MB) == 1000 * MB
    assert MemoryPolicy(limit=1000 * MB, pause=None).pause_bytes(500 * MB) is None



def test_an_unseen_kind_expects_the_largest_peak_still_remembered():
    rng = random.Random(7)
    memory = TaskMemory()
    for step in range(5 * REMEMBERED_KINDS):
        # Keys named one per task, a few kinds that come back, peaks often equal.
        kind = f"job-{step}" if rng.random() < 0.7 else f"sort-{rng.randrange(5)}"
        memory.record(f"{kind}-result", rng.choice((0, 0, 10, 10, 10, rng.randrange(1000))))
        remembered = [peak for peaks in memory.peaks.values() for peak in peaks]
        assert memory.expected("never-seen") == max(remembered)
