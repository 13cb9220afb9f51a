"""What the worker spills when the process runs short of memory, as decisions from numbers
(process memory, values in memory, which of them queued tasks read) and then as carried out by
the store and the monitor."""
from __future__ import annotations

import pytest
from dist_worker.memory import MemoryPolicy
from dist_worker.monitor import STORE_CHECK_BYTES, Monitor
from dist_worker.spillpolicy import Candidate, before_task, by_process, on_arrival
from dist_worker.store import DataStore

MB = 10**6
# 1000 MB: target 600, spill 700, pause 800, terminate 950.
POLICY = MemoryPolicy(limit=1000 * MB)


def values(*sizes_and_wanted: tuple[int, bool]) -> list[Candidate]:
    """Candidates in spill order: ``v0``, ``v1``... of the given sizes (MB)."""
    return [Candidate(f"v{i}", mb * MB, wanted)
            for i, (mb, wanted) in enumerate(sizes_and_wanted)]


IDLE_THEN_WANTED = values((50, False), (50, False), (100, True), (100, True))


def test_under_the_spill_threshold_nothing_spills():
    plan = by_process(POLICY, 700 * MB, spillable=300 * MB)
    assert not plan.needed and plan.choose(IDLE_THEN_WANTED) == []


def test_past_spill_values_spill_in_order_until_the_process_is_under_target():
    plan = by_process(POLICY, 750 * MB, spillable=300 * MB)
    assert plan.choose(IDLE_THEN_WANTED) == ["v0", "v1", "v2"]  # 750 - 200 is under 600


SMALL = values((20, False), (20, False), (50, True), (50, True))  # 140 MB


def test_wanted_values_are_kept_while_a_task_runs_and_spilling_all_would_not_unpause():
    # 140 MB of values in a 945 MB process: 805 MB is not values (mostly the running task's),
    # so spilling all of them would leave the worker past pause anyway.
    plan = by_process(POLICY, 945 * MB, spillable=140 * MB, task_running=True)
    assert plan.choose(SMALL) == ["v0", "v1"]


def test_wanted_values_spill_when_that_brings_the_worker_back_under_pause():
    plan = by_process(POLICY, 850 * MB, spillable=140 * MB, task_running=True)  # floor 710
    assert plan.choose(SMALL) == ["v0", "v1", "v2", "v3"]


def test_wanted_values_spill_with_no_task_running_since_nothing_else_frees_memory():
    plan = by_process(POLICY, 945 * MB, spillable=140 * MB, task_running=False)
    assert plan.choose(SMALL) == ["v0", "v1", "v2", "v3"]


def test_past_terminate_wanted_values_spill_even_while_a_task_runs():
    plan = by_process(POLICY, 960 * MB, spillable=140 * MB, task_running=True)
    assert plan.choose(SMALL) == ["v0", "v1", "v2", "v3"]


def test_with_the_target_off_the_spill_threshold_is_the_goal():
    policy = MemoryPolicy(limit=1000 * MB, target=None)
    plan = by_process(policy, 760 * MB, spillable=300 * MB)
    assert plan.choose(IDLE_THEN_WANTED) == ["v0", "v1"]  # 760 - 100 is under 700


def test_with_spilling_off_nothing_is_ever_planned():
    policy = MemoryPolicy(limit=1000 * MB, spill=None)
    assert by_process(policy, 990 * MB, 300 * MB).choose(IDLE_THEN_WANTED) == []
    assert before_task(policy, 990 * MB, 100 * MB).choose(IDLE_THEN_WANTED) == []
    assert on_arrival(policy, 990 * MB).choose(IDLE_THEN_WANTED) == []


def test_before_a_task_values_spill_until_its_expected_memory_fits_under_pause():
    plan = before_task(POLICY, 700 * MB, expected=180 * MB)  # 880 expected: 80 MB must go
    assert plan.choose(IDLE_THEN_WANTED) == ["v0", "v1"]
    assert before_task(POLICY, 600 * MB, expected=180 * MB).choose(IDLE_THEN_WANTED) == []


def test_a_value_arriving_past_pause_spills_others_back_to_pause_only():
    assert on_arrival(POLICY, 790 * MB).choose(IDLE_THEN_WANTED) == []
    assert on_arrival(POLICY, 870 * MB).choose(IDLE_THEN_WANTED) == ["v0", "v1"]


def test_a_value_that_could_not_spill_gives_its_size_back_to_the_estimate():
    plan = by_process(POLICY, 750 * MB, spillable=300 * MB)
    assert plan.wants(100 * MB, wanted=False)
    plan.undo(100 * MB)  # it was pinned instead
    assert plan.process == 750 * MB


# -- carried out -------------------------------------------------------------------------------
def filled(mb: int) -> bytes:
    return b"x" * (mb * MB)


@pytest.fixture
def store(tmp_path):
    made = DataStore(target=POLICY.bytes_at("target"), directory=str(tmp_path),
                     spill_compression="none")
    yield made
    made.close()


def test_the_store_spills_idle_values_and_keeps_those_queued_tasks_read(store):
    store.plan_use("input", (0, 1))
    store["input"] = filled(50)
    store["idle"] = filled(20)
    plan = by_process(POLICY, 945 * MB, spillable=store.spillable, task_running=True)
    assert store.spill_by_plan(plan) == store.weights["idle"]
    assert store.in_memory("input") and not store.in_memory("idle")


class FakeWorker:
    def __init__(self, store: DataStore):
        self.memory_policy = POLICY
        self.memory_limit = POLICY.limit
        self.nthreads = 1
        self.closing = False
        self.store = store
        self.paused = False
        self.reading_inputs = 0  # bytes of tasks' inputs being read back on a thread
        self.sent: list = []

    def handle(self, *events) -> None:
        for event in events:
            self.paused = event.paused

    def send_center(self, *messages) -> None:
        self.sent.extend(messages)

    def metrics(self) -> dict:
        return {}


def test_the_monitor_keeps_a_queued_tasks_inputs_while_a_task_takes_the_memory(store):
    monitor = Monitor(FakeWorker(store))
    store.plan_use("next-input", (0, 1))
    store["next-input"] = filled(50)
    store["idle"] = filled(20)
    monitor.rss = lambda: 945 * MB  # a running task's own memory: nothing spilled lowers it
    started = monitor.task_starting()
    monitor.check_memory(945 * MB)
    assert store.in_memory("next-input") and not store.in_memory("idle")
    monitor.after_task("task-1", started)  # it returned; the memory is still not back
    monitor.check_memory(945 * MB)
    assert not store.in_memory("next-input")  # nothing else will free it now


def test_a_value_stored_past_pause_spills_others_at_once_not_at_the_next_look(store):
    monitor = Monitor(FakeWorker(store))
    rss = [500 * MB]
    monitor.rss = lambda: rss[0]
    monitor.check_memory(rss[0])
    store["older"] = filled(100)
    rss[0] = 750 * MB
    store["burst-1"] = filled(100)  # past spill, under pause: for the monitor's next look
    assert store.spilled == 0
    rss[0] = 880 * MB
    store["burst-2"] = filled(100)  # past pause: 80 MB must go now
    assert not store.in_memory("older") and store.in_memory("burst-2")


def test_small_values_read_no_process_memory_while_the_last_look_was_well_under(store):
    monitor = Monitor(FakeWorker(store))
    reads = []
    monitor.rss = lambda: reads.append(1) or 300 * MB
    monitor.check_memory(300 * MB)
    reads.clear()
    for i in range(100):
        store[f"small-{i}"] = b"x" * 1000
    assert reads == []
    store["large"] = b"x" * STORE_CHECK_BYTES
    assert reads == [1]
