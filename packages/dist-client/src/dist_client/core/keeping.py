"""Keeping results in the client: once every held future is settled, the values small
enough (up to a budget in all) are copied here, so that they stay readable once the
connection is closed (``shutdown`` keeps them before it closes)."""
from __future__ import annotations

import threading
from typing import Protocol

from ..data_paths import DataPaths
from .keystate import KeyState
from .state import ClientState
from .waiters import settled_async


class Core(Protocol):
    """What keeping results needs of its client's core (``core.client.ClientCore``)."""

    lock: threading.RLock
    state: ClientState
    data: DataPaths

    @property
    def status(self) -> str: ...
    def schedule_release(self) -> None: ...



async def keep_results(core: Core, budget: int) -> None:
    """Wait for every held future, then copy results (up to ``budget`` bytes in all) into
    the client, so they stay readable once the connection is closed."""
    with core.lock:
        held = core.state.hold_all()
    try:
        await _settle_and_keep(core, held, budget)
    finally:
        with core.lock:
            release = core.status == "running"
            if any([core.state.unhold(state.key, release) for state in held]):
                core.schedule_release()


async def _settle_and_keep(core: Core, held: list[KeyState], budget: int) -> None:
    await settled_async(held)
    keys = []
    for state in held:
        if state.status == "finished" and state.small is None \
                and state.nbytes <= budget:
            budget -= state.nbytes
            keys.append(state.key)
    if not keys or core.status != "running":
        return
    try:
        payloads = await core.data.payloads(keys)
    except Exception:  # noqa: BLE001 -- those results are read from the cluster or fail
        return
    for state in held:
        if state.key in payloads:
            state.small_value = payloads[state.key]
