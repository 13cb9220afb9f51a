"""``comm.run``: ``asyncio.run`` on the servers' loop, on every supported Python (3.10 has no
``asyncio.Runner``, and the same steps are taken by hand there)."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from dist_protocol.comm import run

pytestmark = pytest.mark.timeout(30)


def run_on_a_thread(main: Any) -> Any:
    """``run(main)`` on a new thread, as the servers' main thread runs it: this one's loop
    settings are left alone. Its value, or what it raised."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = run(main)
        except BaseException as error:  # noqa: BLE001 -- handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_run_ends_when_the_program_left_the_thread_without_a_current_loop():
    # A worker's inline tasks run with the thread's current loop unset (they must not see the
    # worker's): on Python 3.10 the stop after them raised "There is no current event loop"
    # and the worker exited 1 on a SIGTERM.
    async def main() -> str:
        asyncio.set_event_loop(None)
        return "done"

    assert run_on_a_thread(main()) == "done"


def test_run_cancels_the_tasks_left_running_and_closes_the_loop():
    cancelled = threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> int:
        loops.append(asyncio.get_running_loop())
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)  # (the task started)
        return 7

    assert run_on_a_thread(main()) == 7
    assert cancelled.is_set() and loops[0].is_closed()
