"""The scheduler file: where a center says how to reach it, on a file system its workers and
clients share (``dcenter --scheduler-file``, ``dworker --scheduler-file``,
``Executor(scheduler_file=)``), as dask's HPC deployments do.

A JSON object with at least ``address`` (as workers and clients reach the center) and ``id``
(which center wrote it), never the token. The center writes it whole under another name and
renames it into place, so a reader sees the old file, the new one, or none -- never half of
one.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

# A shared file system (NFS, Lustre, GPFS) tells one host nothing of a file another host
# writes, so waiting for the file means looking again: soon at first, then less often.
FIRST_LOOK_AFTER = 0.05
LOOK_AT_MOST_EVERY = 1.0


class SchedulerFileError(ValueError):
    """The scheduler file exists but cannot be read or holds no center's address."""


def center_identity(address: str, *, dashboard_url: str | None = None,
                    dashboard_port: int | None = None, started: float | None = None
                    ) -> dict[str, Any]:
    """What a center writes: its address, a fresh id, its dashboard and when it started."""
    services = {} if dashboard_port is None else {"dashboard": dashboard_port}
    identity: dict[str, Any] = {"type": "Center", "id": f"center-{os.urandom(16).hex()}",
                                "address": address, "services": services,
                                "started": time.time() if started is None else started,
                                "pid": os.getpid()}
    if dashboard_url is not None:
        identity["dashboard"] = dashboard_url
    return identity


def write_scheduler_file(path: str, identity: dict[str, Any]) -> None:
    """Write ``identity`` to ``path`` atomically (a temporary file in the same folder, renamed)."""
    import tempfile  # (only a center writing the file needs it)

    path = os.path.expanduser(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                     dir=folder)
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(identity, file, indent=2)
            file.write("\n")
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from workers run as others
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def read_scheduler_file(path: str) -> dict[str, Any]:
    """The center's identity in ``path``: ``FileNotFoundError`` if there is none yet,
    ``SchedulerFileError`` (naming the path) if it cannot be read or has no address."""
    path = os.path.expanduser(path)  # (as a shell would, for paths given from Python)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise SchedulerFileError(f"cannot read the scheduler file {path}: {exc}") from None
    try:
        identity = json.loads(text)
    except ValueError as exc:
        raise SchedulerFileError(f"the scheduler file {path} is not JSON ({exc}); a center "
                                 "started with --scheduler-file writes it") from None
    if not isinstance(identity, dict) or not isinstance(identity.get("address"), str) \
            or not identity["address"]:
        raise SchedulerFileError(f"the scheduler file {path} gives no center address (a JSON "
                                 'object with "address": "HOST:PORT" was expected)')
    found: dict[str, Any] = identity
    return found


def remove_scheduler_file(path: str, center_id: str) -> bool:
    """Remove ``path`` if the center ``center_id`` wrote it (not if another center has written
    it since); whether it was removed."""
    path = os.path.expanduser(path)
    try:
        if read_scheduler_file(path).get("id") != center_id:
            return False
        os.unlink(path)
    except (OSError, SchedulerFileError):
        return False
    return True


def _give_up(path: str, timeout: float) -> TimeoutError:
    return TimeoutError(f"no scheduler file at {path} after {timeout:g} s: start the center "
                        f"with --scheduler-file {path} (on a file system this host shares)")


def wait_for_scheduler_file(path: str, timeout: float | None,
                            sleep: Callable[[float], None] = time.sleep,
                            clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """The identity in ``path`` once it exists (``timeout`` None: however long that takes);
    ``TimeoutError`` naming the path after ``timeout`` seconds without it."""
    pauses = _pauses(path, timeout, clock)
    while True:
        try:
            return read_scheduler_file(path)
        except FileNotFoundError:
            pass
        sleep(next(pauses))


async def wait_for_scheduler_file_async(
        path: str, timeout: float | None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> dict[str, Any]:
    """``wait_for_scheduler_file`` on an event loop (reading the file blocks it briefly)."""
    pauses = _pauses(path, timeout, asyncio.get_running_loop().time)
    while True:
        try:
            return read_scheduler_file(path)
        except FileNotFoundError:
            pass
        await sleep(next(pauses))


def _pauses(path: str, timeout: float | None, clock: Callable[[], float]) -> Iterator[float]:
    """The pauses between looks for ``path``, the same for both waits: doubling from
    ``FIRST_LOOK_AFTER`` to ``LOOK_AT_MOST_EVERY``, the last cut short at the deadline
    (``timeout`` from the first look that found nothing), then ``TimeoutError``."""
    deadline = None if timeout is None else clock() + timeout
    interval = FIRST_LOOK_AFTER
    while True:
        if deadline is None:
            yield interval
        else:
            left = deadline - clock()
            if left <= 0:
                raise _give_up(path, timeout or 0.0)
            yield min(interval, left)
        interval = min(interval * 2, LOOK_AT_MOST_EVERY)


__all__ = ["SchedulerFileError", "center_identity", "read_scheduler_file",
           "remove_scheduler_file", "wait_for_scheduler_file", "wait_for_scheduler_file_async",
           "write_scheduler_file"]
