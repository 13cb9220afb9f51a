"""A future whose task failed is released when dropped, though its error was raised: the error
(kept by the key's state) must not keep the future alive through its traceback."""
import asyncio
import gc

import pytest
from dist_client.core.keystate import KeyState
from dist_client.future import Future


class HoldingCore:
    """What a Future needs of a client's core, counting the handles on each key."""

    def __init__(self):
        self.handles: dict[str, int] = {}
        self.states: dict[str, KeyState] = {}

    def hold(self, key, state=None):
        self.handles[key] = self.handles.get(key, 0) + 1
        return self.states.setdefault(key, state or KeyState(key))

    def unhold(self, key, state=None):
        self.handles[key] -= 1

    def release_handle(self, state):
        self.unhold(state.key)

    def drop(self, state):
        self.unhold(state.key)


class Facade:
    def __init__(self):
        self.core = HoldingCore()


def failed() -> tuple[Facade, Future]:
    facade = Facade()
    future = Future("k", facade)
    future.keystate.fail(ValueError("the task failed"))
    return facade, future


def test_a_failed_future_is_released_after_result_raised():
    facade, future = failed()
    with pytest.raises(ValueError, match="the task failed"):
        future.result()
    del future
    gc.disable()  # by reference counting alone, as a user's program would drop it
    try:
        assert facade.core.handles["k"] == 0
    finally:
        gc.enable()


def test_a_failed_future_is_released_after_await_raised():
    facade, future = failed()
    box = [future]  # (the frames of the raised error keep the list, not the future)

    async def wait():
        with pytest.raises(ValueError, match="the task failed"):
            await box[0]
    asyncio.run(wait())
    box.clear()
    del future
    gc.disable()
    try:
        assert facade.core.handles["k"] == 0
    finally:
        gc.enable()
