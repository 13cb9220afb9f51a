"""Fixtures shared by the comm tests."""
from __future__ import annotations

import asyncio

import pytest
from dist_protocol import comm
from dist_protocol.comm import new_event_loop


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Runs a coroutine to completion on the chosen event loop."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
        factory = new_event_loop
    else:
        factory = asyncio.new_event_loop

    def run_on_loop(coro):
        return comm.run(asyncio.wait_for(coro, 50), loop_factory=factory)
    return run_on_loop
