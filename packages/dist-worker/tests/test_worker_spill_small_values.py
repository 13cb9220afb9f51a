"""Small results keep their pickle beside the value (so that serving them costs no second
pickling); spilling such a value must free that copy too, or a worker holding many small
results spills them all and stays paused on the memory their copies hold."""
from __future__ import annotations

import os

from dist_protocol.messages import ComputeTask
from dist_protocol.serialize import deserialize, serialize
from dist_worker.events import ComputeRequested, Execute, ExecutionSucceeded
from dist_worker.state import WorkerState
from dist_worker.store import DataStore

ME = "tcp://me:1"
VALUE_BYTES = 10_000


def finish_small_results(state: WorkerState, n: int) -> None:
    out = state.handle(*[ComputeRequested(ComputeTask(key=f"small-{i}", function="os:urandom",
                                                      priority=i)) for i in range(n)])
    while out:
        [execute] = [ins for ins in out if isinstance(ins, Execute)] or [None]
        if execute is None:
            break
        value = os.urandom(VALUE_BYTES)
        payload = serialize(value)
        out = state.handle(ExecutionSucceeded(execute.key, value, payload.nbytes, "bytes",
                                              0.0, 0.0, payload))


def test_spilling_a_small_result_frees_its_kept_pickle_too(tmp_path):
    store = DataStore(target=100 * VALUE_BYTES, directory=str(tmp_path))
    state = WorkerState(1, ME, data=store)
    finish_small_results(state, 500)
    assert len(store.slow) > 350  # most went to disk
    in_memory = {key for key in state.data if store.in_memory(key)}
    assert set(state.serialized) <= in_memory
    state.validate()
    # Each is served as it was stored, from memory or from disk.
    for key in ("small-0", "small-499"):
        payload = state.serialized.get(key) or store.payload(key)
        assert deserialize(payload) == state.data[key]
    store.close()
