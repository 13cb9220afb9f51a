"""``Executor(scheduler_file=PATH)``: the center's address from the file ``dcenter
--scheduler-file PATH`` writes on a shared file system, waited for up to the executor's
``timeout`` (a batch job's client may start before its center)."""
from __future__ import annotations

from typing import Any

from dist_protocol.scheduler_file import wait_for_scheduler_file, wait_for_scheduler_file_async


def check_scheduler_file(address: Any, scheduler_file: Any) -> None:
    """A clear ``TypeError`` for a scheduler file that is not a path, or given with an
    address."""
    if scheduler_file is None:
        return
    if not isinstance(scheduler_file, str):
        raise TypeError(f"scheduler_file must be a path (str), not {scheduler_file!r}")
    if address is not None:
        raise TypeError("give the center's address or scheduler_file=, not both")


def address_from_scheduler_file(path: str, timeout: float | None) -> str:
    """The address in ``path`` once it exists: ``TimeoutError`` after ``timeout`` seconds
    without it, ``ValueError`` (naming the path) if it cannot be read."""
    return str(wait_for_scheduler_file(path, timeout)["address"])


async def address_from_scheduler_file_async(path: str, timeout: float | None) -> str:
    return str((await wait_for_scheduler_file_async(path, timeout))["address"])


__all__ = ["address_from_scheduler_file", "address_from_scheduler_file_async",
           "check_scheduler_file"]
