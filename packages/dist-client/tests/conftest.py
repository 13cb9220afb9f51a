"""Futures without a cluster: a fake executor that only does the reference bookkeeping."""
import pytest
from dist_client.future import Future, KeyState


class FakeExecutor:
    def __init__(self):
        self.states = {}

    def _hold(self, key, state=None):
        return self.states.setdefault(key, state or KeyState(key))

    def _unhold(self, key):
        pass


@pytest.fixture
def make_future():
    executor = FakeExecutor()
    return lambda key: Future(key, executor)
