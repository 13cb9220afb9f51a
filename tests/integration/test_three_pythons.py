"""A center, workers and a client on every supported Python installed, as a team's machines
drift: the center on the oldest other Python, a worker on each other one, and one on the
client's (with 3.10 to 3.13 installed, four minor versions in one cluster whichever the client
runs).

What must hold (as in dask): a function importable by name with data arguments runs on every
worker, data crosses between them and to the client, the client is warned at connect of the
workers on another Python, and code pickled by value (a lambda, in the task or in its
arguments) runs only where the client's Python runs, or is refused at submit naming the other
versions; a module the worker lacks is the task's error. Nothing restarts.

Fast by design: the other interpreters run this checkout's sources with this environment's
dependencies on ``PYTHONPATH`` (pure Python, or a pure fallback such as msgpack's where the
compiled part is this Python's) instead of virtual environments built per source state;
where they cannot import the packages so, they are left out, and the test is skipped saying
why when fewer than two are left.
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
from typing import NamedTuple

import pytest
from .test_other_python import HERE, STARTED, SUPPORTED_MINORS, find_python, versions_of

from dist_client import EnvironmentMismatch

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[2]
RESULT_TIMEOUT = 20


class OtherPython(NamedTuple):
    python: str
    env: dict[str, str]
    full: str  # "3.12.1"
    minor: str  # "3.12"


def sources_path() -> str:
    sources = [str(REPO / "packages" / package / "src")
               for package in ("dist-protocol", "dist-center", "dist-worker", "dist-client")]
    return ":".join([*sources, sysconfig.get_paths()["purelib"]])


def other_pythons() -> tuple[list[OtherPython], list[str]]:
    """Every supported Python but this one that is installed and imports the packages from
    this checkout's sources, oldest first, and why each of the others is left out."""
    found, left_out = [], []
    env = {"PYTHONPATH": sources_path(), "PYTHONNOUSERSITE": "1"}
    for minor in SUPPORTED_MINORS:
        if minor == sys.version_info[1]:
            continue
        python, tried = find_python(minor)
        if python is None:
            left_out.append(f"3.{minor} is not installed (tried {tried or 'nothing'})")
            continue
        imported = subprocess.run([python, "-c", "import dist_center.cli, dist_worker.cli"],
                                  capture_output=True, text=True, timeout=30, env=env)
        if imported.returncode != 0:
            left_out.append(f"{python} cannot import the packages from this checkout's sources "
                            f"and this environment's dependencies: "
                            f"{imported.stderr.strip()[-300:]}")
            continue
        found.append(OtherPython(python, env, *versions_of(python)))
    return found, left_out


def test_a_center_and_workers_on_every_other_python_run_what_crosses_and_refuse_code(
        processes, tmp_path):
    others, left_out = other_pythons()
    if len(others) < 2:
        pytest.skip(f"two other supported Pythons are needed, {len(others)} found: "
                    f"{'; '.join(left_out)}")
    center_python, *worker_pythons = others
    center = processes.start_center(python=center_python.python, env=center_python.env)
    foreign = {other.minor: processes.start_worker(center.address, name=f"python-{other.minor}",
                                                   python=other.python, env=other.env)
               for other in worker_pythons}
    here = processes.start_worker(center.address, name="same-as-client")
    first, last = foreign[worker_pythons[0].minor], foreign[worker_pythons[-1].minor]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = processes.executor(center.address)
    [warned] = [str(w.message) for w in caught if "another Python" in str(w.message)]
    assert f"this client runs CPython {HERE}" in warned, warned
    versions = e.versions()
    assert versions["center"]["python"] == center_python.full
    for other in worker_pythons:
        assert f"{foreign[other.minor].address} runs CPython {other.full}" in warned, warned
        assert versions["workers"][foreign[other.minor].address]["python"] == other.full

    # By name, with data: runs on each other Python's worker, and anywhere in a map.
    for worker in foreign.values():
        assert e.submit(math.sqrt, 16.0, workers=[worker.address],
                        pure=False).result(RESULT_TIMEOUT) == 4.0
    assert e.gather(e.map(operator.add, range(20), range(20)), timeout=RESULT_TIMEOUT) == [
        2 * i for i in range(20)]
    # Data made on one other Python is read on another, by the client and by a task on this
    # Python's worker.
    made_there = e.submit(dict, a=[1, 2], workers=[first.address])
    assert made_there.result(RESULT_TIMEOUT) == {"a": [1, 2]}
    read_on_another = e.submit(operator.getitem, made_there, "a", workers=[last.address])
    assert read_on_another.result(RESULT_TIMEOUT) == [1, 2]
    read_here = e.submit(operator.add, read_on_another, [3], workers=[here.address])
    assert read_here.result(RESULT_TIMEOUT) == [1, 2, 3]

    # Code: refused at submit unless kept to this Python's worker, naming the versions.
    with pytest.raises(EnvironmentMismatch) as refused:
        e.submit(lambda x: x + 1, 1)
    said = str(refused.value)
    assert "nothing was sent" in said and HERE in said, said
    assert all(f"CPython {other.full}" in said for other in worker_pythons), said
    assert e.submit(lambda x: x + 1, 1, workers=[here.address]).result(RESULT_TIMEOUT) == 2
    # Code in an argument: the task waits for this Python's worker, never another.
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
        missing = e.submit(only_on_the_client.double, 2, workers=[last.address])
        with pytest.raises(ModuleNotFoundError, match="only_on_the_client") as failed:
            missing.result(RESULT_TIMEOUT)
        said = "".join(getattr(failed.value, "__notes__", []))
        assert f"on the worker (CPython {worker_pythons[-1].full})" in said, said
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("only_on_the_client", None)

    for worker in (*foreign.values(), here):
        assert len(worker.matching(STARTED)) == 1
