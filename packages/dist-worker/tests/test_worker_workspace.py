"""Spill folders: each worker's is removed when it stops, and one a killed worker left behind
is removed by the next worker started in the same place."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dist_worker.store import DataStore
from dist_worker.workspace import claim, remove_abandoned

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")]

KILLED_WORKER = """
import os, signal, sys
from dist_worker.store import DataStore
store = DataStore(target=1, directory=sys.argv[1])
store["a"] = b"x" * 100_000  # over the target: spilled
print(store.directory, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_worker_folder(parent) -> str:
    done = subprocess.run([sys.executable, "-c", KILLED_WORKER, str(parent)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == -9, done.stderr
    folder = done.stdout.strip()
    assert os.listdir(folder), "the killed store spilled nothing"
    return folder


def test_a_folder_left_by_a_killed_worker_goes_when_the_next_store_starts(tmp_path):
    left = killed_worker_folder(tmp_path)
    store = DataStore(target=1, directory=str(tmp_path))
    try:
        assert not os.path.exists(left) and not os.path.exists(left + ".lock")
        store["b"] = b"y" * 100_000
        assert os.listdir(store.directory)
    finally:
        store.close()
    assert os.listdir(tmp_path) == []


def test_a_live_workers_folder_and_folders_made_otherwise_are_kept(tmp_path):
    alive = claim(str(tmp_path))
    unlocked = tmp_path / "dist-worker-12345"  # no lock: not ours to judge
    unlocked.mkdir()
    left = killed_worker_folder(tmp_path)
    try:
        assert remove_abandoned(str(tmp_path)) == [left]
        assert os.path.isdir(alive.directory) and unlocked.is_dir()
    finally:
        alive.remove()
    assert sorted(os.listdir(tmp_path)) == ["dist-worker-12345"]


def test_an_unwritable_parent_leaves_the_store_working_in_memory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the directory should be")
    store = DataStore(target=None, directory=str(blocker / "spill"))
    store["a"] = b"x"
    assert not store.check_directory() and store["a"] == b"x"
    store.close()
