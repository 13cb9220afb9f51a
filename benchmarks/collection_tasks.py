"""Data made on the workers for the dask-collection workloads (``dask_workloads.py``).

An importable module (the harness puts this directory on every worker's PYTHONPATH), so the
graphs carry a function name and a seed per partition, not the data itself.
"""
from __future__ import annotations

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
         "rho sigma tau upsilon phi chi psi omega").split()


def table_partition(seed: int, rows: int, keys: int = 1000):
    """A pandas partition: ``key`` (an int below ``keys``), ``x`` and ``y`` (floats)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({"key": rng.integers(0, keys, rows), "x": rng.random(rows),
                         "y": rng.standard_normal(rows)})


def text_lines(seed: int, lines: int, words_per_line: int = 12) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(WORDS), (lines, words_per_line))
    return [" ".join(WORDS[i] for i in row) for row in picks]
