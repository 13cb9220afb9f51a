"""Workers with other versions of the packages that shape the wire: one warning, naming them.

A worker whose environment has another cloudpickle, msgpack or dist release than the client
can still run its tasks (the Python minor version is what decides whether pickled code may
run there), but it is the first thing to look at when results differ between workers. Here a
real worker reports other versions: its ``PYTHONPATH`` starts with a directory of package
metadata that shadows the installed distributions' (the modules themselves are the same),
which is what ``importlib.metadata`` and so the handshake see.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from dist_client import EnvironmentMismatch, Executor

pytestmark = pytest.mark.timeout(120)
RESULT_TIMEOUT = 30

OTHER_VERSIONS = {"cloudpickle": "2.2.1", "msgpack": "1.0.0", "dist-worker": "0.0.9"}


def shadowing_metadata(root: Path) -> Path:
    for name, version in OTHER_VERSIONS.items():
        info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\n"
                                       f"Version: {version}\n")
    return root


def inc(x):
    return x + 1


def test_other_package_versions_give_one_warning_naming_package_and_versions(processes,
                                                                           tmp_path):
    center = processes.start_center()
    same = processes.start_worker(center.address, name="same-versions")
    other = processes.start_worker(center.address, name="other-versions", env={
        "PYTHONPATH": str(shadowing_metadata(tmp_path / "metadata"))})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = Executor(center.address)
        processes.executors.append(e)  # closed with the processes
        # Everything still runs, on both workers; no further warning for the same versions.
        assert e.submit(inc, 1, workers=[other.address]).result(RESULT_TIMEOUT) == 2
        assert e.gather(e.map(inc, range(20)), timeout=RESULT_TIMEOUT) == list(range(1, 21))
        e.versions()
        e.ncores()
    said = [str(w.message) for w in caught if "package versions" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    [message] = said
    [warning] = [w for w in caught if str(w.message) == message]
    assert warning.filename == __file__  # the user's line, not the client's
    versions = e.versions()
    ours = versions["client"]["packages"]
    for package, theirs in OTHER_VERSIONS.items():
        assert f"{package} " in message
        assert f"{theirs} ({other.address})" in message, message
        assert f"{ours[package]} (" in message, message

    workers = versions["workers"]
    assert workers[other.address]["packages"]["cloudpickle"] == "2.2.1"
    assert workers[same.address]["packages"]["cloudpickle"] == ours["cloudpickle"]
    with pytest.raises(EnvironmentMismatch, match=r"cloudpickle: .*2\.2\.1") as info:
        e.versions(check=True)
    assert isinstance(info.value, ValueError)  # what dask's get_versions(check=True) raises
