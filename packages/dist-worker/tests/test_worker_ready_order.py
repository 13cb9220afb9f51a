"""Which ready task runs next on a worker that spills: by priority among those whose inputs
are all in memory; a task with an input on disk waits until none of those is left, or until
it has waited ``PATIENCE`` seconds; once a value is read back for one task, its other
readers go next. And the inputs of a ready task spill after those of a waiting one."""
from __future__ import annotations

import numpy as np
from dist_protocol.messages import ComputeTask
from dist_worker.events import ComputeRequested, DataPut, Execute, ExecutionSucceeded
from dist_worker.readyqueue import PATIENCE
from dist_worker.state import WorkerState
from dist_worker.store import DataStore

MB = 10**6
ME = "tcp://me:1"


def incompressible(i: int) -> np.ndarray:
    values = np.random.default_rng(i).random(MB // 8)
    values[0] = i
    return values


def reader(key: str, dep: str, priority: int) -> ComputeRequested:
    return ComputeRequested(ComputeTask(key=key, function="operator:getitem",
                                        who_has={dep: [ME]}, nbytes={dep: MB},
                                        priority=priority))


def run_all(state: WorkerState, out: list) -> list[str]:
    """Run each task as it starts (one thread), until none is left: the keys in that order."""
    ran = []
    while True:
        started = [ins for ins in out if isinstance(ins, Execute)]
        if not started:
            return ran
        [execute] = started
        ran.append(execute.key)
        out = state.handle(ExecutionSucceeded(execute.key, 0, 8, "int", 0.0, 0.0))
        state.validate()


def spilling_worker(tmp_path, target_mb: float, values: int, clock=None):
    """A worker holding ``values`` values of 1 MB, stored in order (``v-0`` first), of
    which what does not fit under the target is on disk, the first stored first."""
    store = DataStore(target=target_mb * MB, directory=str(tmp_path), spill_compression="none")
    state = (WorkerState(1, ME, data=store) if clock is None
             else WorkerState(1, ME, data=store, clock=clock))
    held = {f"v-{i}": incompressible(i) for i in range(values)}
    state.handle(DataPut(held, dict.fromkeys(held, MB)))
    return state, store


def test_a_task_whose_input_is_on_disk_waits_for_those_whose_inputs_are_in_memory(tmp_path):
    state, store = spilling_worker(tmp_path, target_mb=1.5, values=2)
    assert store.on_disk("v-0") and store.in_memory("v-1")
    out = state.handle(reader("urgent", "v-0", priority=10),
                       reader("in-memory", "v-1", priority=0))
    assert run_all(state, out) == ["in-memory", "urgent"]
    store.close()


def test_a_value_read_back_is_read_by_all_its_ready_readers_before_another_is(tmp_path):
    # Three values on disk, one fits in memory, each read by three tasks; by priority alone
    # the readers of the three alternate (v-0, v-1, v-2, v-0, ...), and each read finds its
    # value on disk (9 MB read back).
    state, store = spilling_worker(tmp_path, target_mb=1.5, values=3)
    store.evict()  # all three on disk
    assert not any(store.in_memory(f"v-{i}") for i in range(3))
    tasks = [reader(f"r-{j}-{i}", f"v-{i}", priority=-(3 * j + i))
             for j in range(3) for i in range(3)]
    ran = run_all(state, state.handle(*tasks))
    assert ran == ["r-0-0", "r-1-0", "r-2-0", "r-0-1", "r-1-1", "r-2-1",
                   "r-0-2", "r-1-2", "r-2-2"]
    assert store.slow.bytes_read <= 3 * MB + 3 * 4096, store.slow.bytes_read  # each once
    store.close()


def test_a_task_passed_over_runs_once_it_has_waited_long_enough(tmp_path):
    now = [0.0]
    state, store = spilling_worker(tmp_path, target_mb=1.5, values=2, clock=lambda: now[0])
    out = state.handle(reader("on-disk", "v-0", priority=10),
                       *[reader(f"in-memory-{i}", "v-1", priority=-i) for i in range(4)])
    [first] = [ins.key for ins in out if isinstance(ins, Execute)]
    assert first == "in-memory-0"
    out = state.handle(ExecutionSucceeded("in-memory-0", 0, 8, "int", 0.0, 0.0))
    assert [ins.key for ins in out if isinstance(ins, Execute)] == ["in-memory-1"]
    now[0] = PATIENCE
    out = state.handle(ExecutionSucceeded("in-memory-1", 0, 8, "int", 0.0, 0.0))
    assert [ins.key for ins in out if isinstance(ins, Execute)] == ["on-disk"]
    assert run_all(state, state.handle(ExecutionSucceeded("on-disk", 0, 8, "int", 0.0, 0.0))
                   ) == ["in-memory-2", "in-memory-3"]
    store.close()


def test_a_worker_that_does_not_spill_runs_its_ready_tasks_by_priority_alone():
    state = WorkerState(1, ME)
    state.handle(DataPut({"a": 1, "b": 2}, {"a": 28, "b": 28}))
    tasks = [reader(f"t-{i}", "ab"[i % 2], priority=-i) for i in range(6)]
    assert run_all(state, state.handle(*tasks)) == [f"t-{i}" for i in range(6)]


def waiting_and_ready_readers(store: DataStore) -> WorkerState:
    """A one-thread worker holding ``a`` and ``b`` (1 MB each), its thread busy: ``waiting``
    reads ``a`` and a value still on a peer, ``ready`` reads ``b``."""
    state = WorkerState(1, ME, data=store)
    state.handle(DataPut({"a": incompressible(0), "b": incompressible(1)}, {"a": MB, "b": MB}))
    state.handle(ComputeRequested(ComputeTask(key="busy", function="builtins:len", args=[],
                                              priority=100)))  # holds the only thread
    state.handle(ComputeRequested(ComputeTask(
        key="waiting", function="builtins:len", who_has={"a": [ME], "x": ["tcp://peer:2"]},
        nbytes={"a": MB, "x": MB}, priority=10)))
    state.handle(reader("ready", "b", priority=0))
    return state


def test_the_input_of_a_ready_task_spills_after_that_of_a_waiting_one(tmp_path):
    store = DataStore(target=2.5 * MB, directory=str(tmp_path), spill_compression="none")
    state = waiting_and_ready_readers(store)
    assert state.tasks["waiting"].state == "waiting" and state.tasks["ready"].state == "ready"
    store.target = 1.5 * MB  # one of the two must go
    store.spill_to_target()
    assert store.on_disk("a") and store.in_memory("b")
    store.close()


def test_reads_are_followed_only_near_spilling_and_whole_once_they_are(tmp_path):
    store = DataStore(target=10 * MB, directory=str(tmp_path), spill_compression="none")
    state = waiting_and_ready_readers(store)
    # 2 MB of 10: far from spilling, no read is followed
    assert not store.watching and not store.order.planned
    assert state.reads.next_read("a") is None
    store.target = 1.5 * MB  # one of the two must go: the read furthest ahead, the waiting task's
    store.spill_to_target()
    assert store.watching and set(store.order.planned) == {"b"}
    assert store.on_disk("a") and store.in_memory("b")
    assert state.reads.readers("a") == ["waiting"] and state.reads.readers("b") == ["ready"]
    store.target = 100 * MB
    store.look(process=0)
    assert store.watching, "a value on disk: the ready tasks' order still asks the store"
    state.handle(ExecutionSucceeded("busy", 0, 8, "int", 0.0, 0.0))  # "ready" runs
    state.handle(ExecutionSucceeded("ready", 0, 8, "int", 0.0, 0.0))
    store["a"]  # read back
    assert store.look(process=0) is None and not store.watching
    assert not store.order.planned and state.reads.next_read("a") is None
    state.validate()
    store.close()
