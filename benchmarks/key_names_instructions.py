"""Instructions per key of the client's key naming, counted in one process, no cluster.

Each case runs in a Python process under ``valgrind --tool=callgrind`` twice, with N keys
and with none; the difference divided by N is what one key costs, whatever the load:

* ``given``: ``map_keys`` with a list of N string keys the user chose (``map(key=[...])``);
* ``future``: a ``Future`` made for each of N wire names (a fake core holds them);
* ``chunk``: ``user_key`` of N dask chunk names, ``('x-<hex>', i, j)`` (``Future.key``);
* ``literal``: ``ast.literal_eval`` of the same names, for comparison.

    python benchmarks/key_names_instructions.py [--n 10000] [--cases given,future,chunk]

The tree counted is the one on ``PYTHONPATH`` (its ``packages/*/src``), as for the other
benchmarks.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

CASES = {
    "given": '''
from dist_client.keys import map_keys
keys = [f"row-{i}" for i in range(N)]
argsets = [(i,) for i in range(N)]
map_keys(len, argsets, {}, keys, True)
''',
    "future": '''
from dist_client.core.keystate import KeyState
from dist_client.future import Future
class Core:
    def __init__(self):
        self.states = {}
    def hold(self, key, state=None):
        return self.states.setdefault(key, state or KeyState(key))
    def unhold(self, key):
        pass
class Executor:
    core = Core()
names = [f"inc-{i:032x}" for i in range(N)]
futures = [Future(name, Executor) for name in names]
''',
    "chunk": '''
from dist_protocol.key_names import user_key
names = [f"('x-79963f7e613e5e55838d2232920baed2', {i}, {i % 7})" for i in range(N)]
keys = [user_key(name) for name in names]
''',
    "literal": '''
import ast
names = [f"('x-79963f7e613e5e55838d2232920baed2', {i}, {i % 7})" for i in range(N)]
keys = [ast.literal_eval(name) for name in names]
''',
}


def count(code: str, n: int) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-c", f"N = {n}\n{code}"],
        capture_output=True, text=True, check=True, timeout=1800,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    for case in args.cases.split(","):
        full, empty = count(CASES[case], args.n), count(CASES[case], 0)
        print(f"{case}: {(full - empty) / args.n:,.0f} instructions per key "
              f"({full:,} - {empty:,})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
