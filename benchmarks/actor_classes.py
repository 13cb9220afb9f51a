"""The actor class every system hosts in benchmarks/actors.py: importable on every worker (the
harness puts this directory on their PYTHONPATH), so each system pickles it by reference."""
from __future__ import annotations


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def increment(self) -> int:
        self.n += 1
        return self.n


def inc(x: int) -> int:
    return x + 1
