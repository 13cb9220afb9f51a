"""What ``large_arguments.py`` and ``large_values.py`` share: servers started with their
output kept line by line, a line waited for, and the large values they hand around."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time


def start(argv: list[str], lines: list[str]) -> subprocess.Popen:
    """Run ``argv`` in a session of its own, each line it prints appended to ``lines``."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc


def wait_line(lines: list[str], pattern: str, timeout: float = 60.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            found = re.search(pattern, line)
            if found:
                return found
        time.sleep(0.05)
    raise TimeoutError(f"no line matching {pattern!r}: {''.join(lines[-5:])}")


def make(kind: str, nbytes: int):
    """``random`` (or ``array``): float64 noise, ``ones``: np.ones, ``bytes``: os.urandom,
    ``compressible``: small whole numbers as floats, ``frame``: a one-column DataFrame."""
    if kind == "bytes":
        return os.urandom(nbytes)
    import numpy
    rng = numpy.random.default_rng(0)
    if kind in ("random", "array"):
        return rng.random(nbytes // 8)
    if kind == "ones":
        return numpy.ones(nbytes // 8)
    if kind == "compressible":
        return rng.integers(0, 50, nbytes // 8, dtype=numpy.uint8).astype(numpy.float64)
    if kind == "frame":
        import pandas
        return pandas.DataFrame({"a": rng.random(nbytes // 8)}, copy=False)
    raise ValueError(kind)
