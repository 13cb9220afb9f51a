"""What the deployment tests share. Tests get it through fixtures: the suite runs with
``--import-mode=importlib``, so a test module cannot import a sibling."""
import time
from collections.abc import Callable

import pytest


def _wait_until(condition: Callable[[], object], timeout: float = 120,
                what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """Polls a condition that no event announces (a process's state, a job queue) until it
    holds, failing with what was awaited."""
    return _wait_until
