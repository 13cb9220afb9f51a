"""The worker's own folder for spill files, and the removal of folders left behind by workers
that ended without removing theirs (SIGKILL, the kernel's out-of-memory killer, a power cut).

Each folder ``dist-worker-XXXX`` has a sibling ``dist-worker-XXXX.lock`` that its worker holds
locked (``flock``) for as long as it lives; the kernel lets go of that lock however the process
ends. A worker starting in the same parent folder removes every folder whose lock it can take,
since their owners are gone, and leaves alone those it cannot (a live worker's) and those
without a lock (not made this way, or being made this moment).

The lock file is created and locked under a name no one looks for, then renamed to its own, so
no worker ever finds a lock file that is not yet locked.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass

try:
    import fcntl
except ImportError:  # not POSIX: folders are made, but nothing left behind is ever removed
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("dist.worker")

PREFIX = "dist-worker-"
LOCK_SUFFIX = ".lock"


@dataclass
class Workspace:
    """A folder of this process's; ``lock`` is the open lock file (None: no lock)."""

    directory: str
    lock: int | None = None

    def remove(self) -> None:
        """Delete the folder and everything in it, then its lock."""
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.lock is not None:
            _unlink(self.directory + LOCK_SUFFIX)
            os.close(self.lock)
            self.lock = None


def claim(parent: str) -> Workspace:
    """A new folder under ``parent``, locked for as long as this process holds it (or until
    ``Workspace.remove``). ``OSError`` when ``parent`` cannot hold one."""
    os.makedirs(parent, exist_ok=True)
    if fcntl is None:
        return Workspace(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    fd, pending = tempfile.mkstemp(prefix="." + PREFIX, suffix=".pending", dir=parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        directory = tempfile.mkdtemp(prefix=PREFIX, dir=parent)
        os.rename(pending, directory + LOCK_SUFFIX)
    except BaseException:
        _unlink(pending)
        os.close(fd)
        raise
    return Workspace(directory, fd)


def remove_abandoned(parent: str) -> list[str]:
    """Remove the folders under ``parent`` whose workers are gone; the folders removed."""
    if fcntl is None:
        return []
    removed = []
    for lock_path in glob.glob(os.path.join(glob.escape(parent), PREFIX + "*" + LOCK_SUFFIX)):
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except OSError:  # removed meanwhile, or another user's
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its worker is alive
            os.close(fd)
            continue
        try:
            directory = lock_path[:-len(LOCK_SUFFIX)]
            shutil.rmtree(directory, ignore_errors=True)
            _unlink(lock_path)
            removed.append(directory)
        finally:
            os.close(fd)
    if removed:
        log.warning("removed %d folder(s) of spill files that workers which did not stop "
                    "cleanly left in %s", len(removed), parent)
    return removed


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
