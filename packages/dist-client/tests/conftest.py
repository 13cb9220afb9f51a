"""Futures without a cluster: a fake client core that only does the reference bookkeeping."""
import pytest
from dist_client.core.keystate import KeyState
from dist_client.future import Future


class FakeCore:
    def __init__(self):
        self.states = {}

    def hold(self, key, state=None):
        return self.states.setdefault(key, state or KeyState(key))

    def unhold(self, key, state=None):
        pass

    def release_handle(self, state):
        pass

    def drop(self, state):
        pass


class FakeExecutor:
    def __init__(self):
        self.core = FakeCore()


@pytest.fixture
def make_future():
    executor = FakeExecutor()
    return lambda key: Future(key, executor)
