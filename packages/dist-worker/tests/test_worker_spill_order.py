"""Which value spills first: those read by no task queued here, and of those a task queued
here will read, the one read furthest ahead."""
from __future__ import annotations

import numpy as np
from dist_protocol.messages import ComputeTask
from dist_worker.events import ComputeRequested, DataPut, Execute, ExecutionSucceeded
from dist_worker.readers import UpcomingReads
from dist_worker.state import WorkerState
from dist_worker.spill_order import SpillOrder
from dist_worker.store import DataStore

MB = 10**6
ME = "tcp://me:1"


def value(mb: int, fill: int = 0) -> np.ndarray:
    return np.full(mb * MB // 8, fill, dtype=np.int64)


def test_values_no_task_reads_any_more_spill_first_then_idle_ones_then_the_latest_read():
    order = SpillOrder()
    order.plan("soon", (1, 0), in_memory=False)
    order.plan("later", (5, 0), in_memory=False)
    for key in ("soon", "later", "idle-old", "idle-new", "read"):
        order.add(key)
    order.plan("read", (3, 0), in_memory=True)
    order.touch("idle-old")  # now the more recently used of the two
    order.plan("read", None, in_memory=True)  # its last reader here finished
    assert order.first() == "read"
    order.remove("read")
    assert order.first() == "idle-new"
    assert order.first(keep={"idle-new"}) == "idle-old"
    order.remove("idle-new")
    order.remove("idle-old")
    assert order.first() == "later"
    assert order.first(keep={"later"}) == "soon"
    assert order.first() == "later"  # what was passed over for ``keep`` is still there
    order.plan("soon", (9, 0), in_memory=True)  # its reader left; the next is further ahead
    assert order.first() == "soon"


def test_a_heavy_value_spills_before_any_other():
    order = SpillOrder()
    order.add("idle")
    order.add("huge", heavy=True)
    assert order.first() == "huge"


def test_outdated_entries_do_not_pile_up_when_nothing_spills():
    order = SpillOrder()
    order.add("x")
    for when in range(10_000):
        order.plan("x", (when, 0), in_memory=True)
    assert order.heap_entries < 200
    assert order.first() == "x"


def test_upcoming_reads_report_the_soonest_reader_of_each_key():
    changes: list = []
    reads = UpcomingReads(lambda key, when: changes.append((key, when)))
    reads.add("t2", (2, 0), ["a", "b"])
    reads.add("t1", (1, 0), ["a"])
    reads.add("t3", (3, 0), ["a"])
    assert changes == [("a", (2, 0)), ("b", (2, 0)), ("a", (1, 0))]
    changes.clear()
    reads.remove("t2", ["a", "b"])  # not a's soonest reader: a's next read stays
    assert changes == [("b", None)]
    reads.remove("t1", ["a"])
    assert reads.next_read("a") == (3, 0)
    reads.remove("t3", ["a"])
    assert changes == [("b", None), ("a", (3, 0)), ("a", None)]


def test_the_store_spills_a_value_a_queued_task_will_read_last(tmp_path):
    store = DataStore(target=25 * MB, directory=str(tmp_path))
    store.plan_use("input", (0, 1))
    store["input"] = value(10)  # the least recently used, but a task here reads it next
    store["result"] = value(10)
    store["another"] = value(10)
    assert store.in_memory("input") and not store.in_memory("result")
    store.close()


def incompressible(i: int) -> np.ndarray:
    values = np.random.default_rng(i).random(MB // 8)
    values[0] = i
    return values


def split_then_pick(nsplits: int, picks: int, target_mb: float, tmp_path) -> int:
    """A shuffle's pattern on one worker: ``nsplits`` values of 1 MB, each read in turn by
    one task per output partition (all of split 0..n for output 0 first, then output 1...).
    Returns how many bytes were read back from disk."""
    store = DataStore(target=target_mb * MB, directory=str(tmp_path), spill_compression="none")
    state = WorkerState(1, ME, data=store)
    splits = {f"split-{i}": incompressible(i) for i in range(nsplits)}
    state.handle(DataPut(splits, dict.fromkeys(splits, MB)))
    tasks = [ComputeRequested(ComputeTask(
        key=f"pick-{i}-{j}", function="operator:getitem", who_has={f"split-{i}": [ME]},
        nbytes={f"split-{i}": MB}, priority=-(j * nsplits + i)))
        for j in range(picks) for i in range(nsplits)]
    out = state.handle(*tasks)
    ran = 0
    while out:
        [execute] = [ins for ins in out if isinstance(ins, Execute)] or [None]
        if execute is None:
            break
        [split] = execute.inputs.values()
        assert execute.key.startswith(f"pick-{int(split[0])}-")
        ran += 1
        out = state.handle(ExecutionSucceeded(execute.key, 0, 8, "int", 0.0, 0.0))
        state.validate()
    assert ran == nsplits * picks
    read = store.slow.bytes_read
    store.close()
    return read


def test_values_read_in_turn_by_queued_tasks_are_not_read_back_once_per_task(tmp_path):
    # Six splits, three of which fit under the target, each read by five tasks in turn. Least
    # recently used first, every one of the 30 reads finds its split on disk; spilling the
    # split read furthest ahead first keeps three in memory for good (18 reads back).
    read = split_then_pick(nsplits=6, picks=5, target_mb=3.5, tmp_path=tmp_path)
    assert read <= 20 * MB, f"{read / MB:.1f} MB read back"
