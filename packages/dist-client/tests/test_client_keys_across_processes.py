"""The keys of pure calls of functions defined in ``__main__`` (which travel by value) are
the same in every process: a set, frozenset or dict the function reads (a global, a closure,
a constant, a default) does not make them follow the process's string hashes
(``PYTHONHASHSEED``), so two clients making the same call share one task."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import pytest
from dist_client.keys import task_key

pytestmark = pytest.mark.timeout(60)

SCRIPT = textwrap.dedent('''
    import functools
    import json
    from dist_client.keys import map_keys, task_key, tokenize

    NAMES = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}
    TABLE = {"first": frozenset({"x", "y", "z", "w"}), "second": {"p", "q", "r", "s"}}

    def known(name):
        return name in NAMES

    def tabled(name, table=TABLE):
        return any(name in values for values in table.values())

    def constant(name):
        return name in {"red", "green", "blue", "cyan", "magenta"}

    def indirect(name):
        return known(name) and constant(name)

    def countdown(n):
        return n if n <= 0 else countdown(n - 1)

    def closing():
        kept = {"one", "two", "three", "four", "five"}
        return lambda name: name in kept

    calls = {
        "global set": task_key(known, ("beta",), {}),
        "default dict of sets": task_key(tabled, ("p",), {}),
        "frozenset constant": task_key(constant, ("red",), {}),
        "function reading a function": task_key(indirect, ("red",), {}),
        "recursive": task_key(countdown, (3,), {}),
        "closure": task_key(closing(), ("two",), {}),
        "lambda": task_key(lambda name: name in NAMES, ("eta",), {}),
        "partial": task_key(functools.partial(tabled, table=TABLE), ("q",), {}),
        "map": map_keys(known, [("alpha",), ("zeta",)], {}, None, True),
        "function as argument": tokenize(known, {"a": NAMES}),
    }
    print(json.dumps(calls))
''')


def keys_in_process(script: str, seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env=env, timeout=50).stdout


def test_calls_of_functions_sent_by_value_have_the_same_keys_in_every_process():
    first, second = keys_in_process(SCRIPT, "1"), keys_in_process(SCRIPT, "2")
    assert first == second
    assert first == keys_in_process(SCRIPT, "3")


def test_what_a_function_reads_is_part_of_its_key():
    names = {"a", "b"}

    def reads(name):
        return name in names

    before = task_key(reads, ("a",), {})
    assert task_key(reads, ("a",), {}) == before
    names.add("c")
    assert task_key(reads, ("a",), {}) != before
    other = lambda name: name in names  # other code: another key
    assert task_key(other, ("a",), {}) != task_key(reads, ("a",), {})
    assert (task_key(functools.partial(reads), ("a",), {})
            != task_key(functools.partial(other), ("a",), {}))
