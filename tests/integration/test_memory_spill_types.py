"""Values of every common kind, spilled by a worker whose memory limit is below what it must
hold, come back exactly: to a task reading them on the worker, and to the client gathering
them. A spilled value is written as its pickle's frames (out-of-band buffers apart) and read
back into buffers of its own: a frame received straight into a ``bytes`` value, an array
over a read-only buffer, a pandas block or an object's fields lost on the way would show
here."""
from __future__ import annotations

import pytest

from dist_client import wait

pytest.importorskip("numpy")
pytest.importorskip("pandas")

RESULT_TIMEOUT = 120
MB = 10**6
KINDS = ("array", "fortran", "frame", "bytes", "bytearray", "objects")


def make(kind, seed, nbytes=20 * MB):
    """A value of ``kind`` taking about ``nbytes``, the same for the same seed anywhere."""
    import numpy
    import pandas
    rng = numpy.random.default_rng(seed)
    if kind == "array":
        values = rng.random(nbytes // 8)
        values[::1000] = numpy.nan
        return values
    if kind == "fortran":  # (not C-contiguous: pickled with its order)
        return numpy.asfortranarray(rng.integers(-2**40, 2**40, (nbytes // 8 // 500, 500)))
    if kind == "frame":
        n = nbytes // 40  # (an object column's strings take more than their pointers)
        return pandas.DataFrame({
            "x": rng.random(n),
            "i": rng.integers(0, 1000, n),
            "c": pandas.Categorical(rng.choice(["a", "b", "c"], n)),
            "s": rng.choice(["spill", "me", "please"], n).astype(object),
        }, index=pandas.date_range("2026-01-01", periods=n, freq="s"))
    if kind == "bytes":
        return rng.bytes(nbytes)
    if kind == "bytearray":
        return bytearray(rng.bytes(nbytes))
    if kind == "objects":  # plain Python objects, no buffer in them
        words = [str(v) for v in rng.integers(0, 10**9, nbytes // 400)]
        return {"words": words, "pairs": [(w, i, None, 1.5) for i, w in enumerate(words)],
                "set": frozenset(words[:1000]), "nested": {"deep": [b"x" * 10, ("t",)]},
                "bytes": rng.bytes(MB)}
    raise ValueError(kind)


def fingerprint(value):
    """What the value is, to the last byte, and whether an array in it can be written to."""
    import hashlib
    import pickle

    import numpy
    import pandas
    if isinstance(value, numpy.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.flags.f_contiguous,
                value.flags.writeable, hashlib.sha256(value.tobytes(order="A")).hexdigest())
    if isinstance(value, pandas.DataFrame):
        return ("frame", tuple(map(str, value.dtypes)), str(value.index.dtype),
                hashlib.sha256(pandas.util.hash_pandas_object(value).values.tobytes())
                .hexdigest(), value.index[-1].isoformat(), value["x"].to_numpy().flags.writeable)
    if isinstance(value, (bytes, bytearray)):
        return (type(value).__name__, hashlib.sha256(value).hexdigest())
    # (a set's pickle follows its order, which string hashing sets per process)
    canonical = {**value, "set": sorted(value["set"])}
    return ("objects", hashlib.sha256(pickle.dumps(canonical, protocol=5)).hexdigest())


def test_every_kind_of_value_spilled_past_the_limit_comes_back_exactly(make_cluster,
                                                                        wait_until):
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(cluster.address, "--memory-limit", "300MB",
                                            nanny=True, name="small")
    cluster.workers.append(worker)
    executor = cluster.executor()
    wanted = [(kind, seed) for seed in (1, 2, 3) for kind in KINDS]  # some 330 MB on 300
    futures = [executor.submit(make, kind, seed, pure=False) for kind, seed in wanted]
    wait(futures, timeout=RESULT_TIMEOUT)
    metrics = wait_until(lambda: cluster.worker_table(executor)[worker.address]["metrics"],
                         10, "a heartbeat")
    assert metrics["spilled"] > 0
    expected = [fingerprint(make(kind, seed)) for kind, seed in wanted]
    # Read back by tasks on the worker (each input from its spill file or memory)...
    read = executor.gather([executor.submit(fingerprint, f) for f in futures],
                           timeout=RESULT_TIMEOUT)
    assert read == expected
    # ...and by the client, one at a time (all at once would not fit here either).
    for future, want in zip(futures, expected):
        assert fingerprint(future.result(timeout=RESULT_TIMEOUT)) == want
    assert len(worker.matching("Registered with center at")) == 1  # never restarted
