"""A center, workers and a client on three Python minor versions, as a team's machines drift.

What must hold (as in dask): a function importable by name with data arguments runs on every
worker, data crosses between them and to the client, the client is warned at connect of the
workers on another Python, and code pickled by value (a lambda, in the task or in its
arguments) runs only where the client's Python runs, or is refused at submit naming both
versions; a module the worker lacks is the task's error. Nothing restarts.

Fast by design: the other interpreters run this checkout's sources with this environment's
dependencies on ``PYTHONPATH`` (pure Python, or a pure fallback such as msgpack's where the
compiled part is this Python's) instead of virtual environments built per source state;
where they cannot import the packages so, the test is skipped saying why.
"""
from __future__ import annotations

import functools
import math
import operator
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import pytest
from .test_other_python import HERE, STARTED, find_other_python, versions_of

from dist_client import EnvironmentMismatch

pytestmark = pytest.mark.timeout(90)
REPO = Path(__file__).resolve().parents[2]
RESULT_TIMEOUT = 20


def sources_path() -> str:
    sources = [str(REPO / "packages" / package / "src")
               for package in ("dist-protocol", "dist-center", "dist-worker", "dist-client")]
    return ":".join([*sources, sysconfig.get_paths()["purelib"]])


def other_python(side: str) -> tuple[str, dict[str, str]]:
    python, why = find_other_python(side)
    if python is None:
        pytest.skip(why)
    env = {"PYTHONPATH": sources_path(), "PYTHONNOUSERSITE": "1"}
    tried = subprocess.run([python, "-c", "import dist_center.cli, dist_worker.cli"],
                           capture_output=True, text=True, timeout=30, env=env)
    if tried.returncode != 0:
        pytest.skip(f"{python} cannot import the packages from this checkout's sources and "
                    f"this environment's dependencies: {tried.stderr.strip()[-300:]}")
    return python, env


def test_center_workers_and_client_on_three_pythons_run_what_crosses_and_refuse_code(
        processes, tmp_path):
    older, older_env = other_python("older")
    newer, newer_env = other_python("newer")
    older_full, _ = versions_of(older)
    newer_full, newer_minor = versions_of(newer)
    center = processes.start_center(python=older, env=older_env)
    there = processes.start_worker(center.address, name="newer", python=newer, env=newer_env)
    here = processes.start_worker(center.address, name="same-as-client")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = processes.executor(center.address)
    [warned] = [str(w.message) for w in caught if "another Python" in str(w.message)]
    assert f"{there.address} runs CPython {newer_full}" in warned, warned
    assert f"this client runs CPython {HERE}" in warned, warned
    versions = e.versions()
    assert versions["center"]["python"] == older_full
    assert versions["workers"][there.address]["python"] == newer_full

    # By name, with data: runs on the other Python's worker, and anywhere in a map.
    assert e.submit(math.sqrt, 16.0, workers=[there.address]).result(RESULT_TIMEOUT) == 4.0
    assert e.gather(e.map(operator.add, range(20), range(20)), timeout=RESULT_TIMEOUT) == [
        2 * i for i in range(20)]
    # Data made there is read here, by the client and by a task on this Python's worker.
    made_there = e.submit(dict, a=[1, 2], workers=[there.address])
    assert made_there.result(RESULT_TIMEOUT) == {"a": [1, 2]}
    read_here = e.submit(operator.getitem, made_there, "a", workers=[here.address])
    assert read_here.result(RESULT_TIMEOUT) == [1, 2]

    # Code: refused at submit unless kept to this Python's worker, naming both versions.
    with pytest.raises(EnvironmentMismatch, match=f"CPython {newer_minor}") as refused:
        e.submit(lambda x: x + 1, 1)
    assert "nothing was sent" in str(refused.value) and HERE in str(refused.value)
    assert e.submit(lambda x: x + 1, 1, workers=[here.address]).result(RESULT_TIMEOUT) == 2
    # Code in an argument: the task waits for this Python's worker, never the other.
    summed = e.submit(functools.reduce, lambda a, b: a + b, [1, 2, 3])
    assert summed.result(RESULT_TIMEOUT) == 6
    assert e.who_has([summed])[summed.key] == [here.address]

    # A dask graph: its nodes run anywhere, those holding code only on this Python's worker.
    import dask.bag

    negated = dask.bag.from_sequence(range(8), npartitions=4).map(operator.neg)
    assert negated.sum().compute(scheduler=e.get) == -28
    assert negated.map(lambda x: x * 2).sum().compute(scheduler=e.get) == -56

    # A module only the client has: the task's error, naming the worker's Python.
    (tmp_path / "only_on_the_client.py").write_text("def double(x):\n    return 2 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import only_on_the_client  # type: ignore[import-not-found]
        missing = e.submit(only_on_the_client.double, 2, workers=[there.address])
        with pytest.raises(ModuleNotFoundError, match="only_on_the_client") as failed:
            missing.result(RESULT_TIMEOUT)
        said = "".join(getattr(failed.value, "__notes__", []))
        assert f"on the worker (CPython {newer_full})" in said, said
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("only_on_the_client", None)

    for worker in (there, here):
        assert len(worker.matching(STARTED)) == 1
