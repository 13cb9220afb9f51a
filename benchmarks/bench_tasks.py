"""The functions the workloads run on the workers.

They live in an importable module (the harness puts this directory on every worker's
PYTHONPATH) so each system pickles them by reference, as it would a user's library code,
rather than by value on every task.
"""
from __future__ import annotations

import os
import sys


def inc(x):
    return x + 1


def total(*parts):
    # Ray resolves only top-level ObjectRef arguments, so its fan-in passes futures as *args.
    return sum(parts)


def make_array(nbytes):
    import numpy as np

    return np.ones(nbytes // 8, dtype=np.float64)


def place():
    """Where this task runs: the Ray node id inside Ray, else the worker process id."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ray.get_runtime_context().get_node_id()
    return os.getpid()


def place_of(_):
    return place()


def nbytes_and_place(array):
    """Touch the array (so a lazy transfer cannot hide) and say where this ran."""
    return int(array.nbytes), float(array[::4096].sum()), place()


def sum_and_place(array):
    """``np.sum`` plus where it ran, to check the task went to the data."""
    import numpy as np

    return float(np.sum(array)), place()
