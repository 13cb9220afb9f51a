"""Fixtures for tests that build hosts as network namespaces (see README.md).

Tests here carry ``@pytest.mark.netns``; they skip, with the reason, when the machine cannot
build namespaces (no root, no iproute2, no kernel support).
"""
from __future__ import annotations

import functools
import os
import signal

import pytest

from .network import (Network, latency_unsupported_reason, netem_available, remove_leftovers,
                      remove_run, unsupported_reason)


@functools.cache
def _unsupported() -> str | None:
    reason = unsupported_reason()
    if reason is None:
        remove_leftovers()
    return reason


def pytest_runtest_setup(item):
    if item.get_closest_marker("netns") and (reason := _unsupported()):
        pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _no_namespaces_outlive_the_run():
    """Deletes whatever this run created, even if a test's own teardown was cut short, and
    turns SIGTERM (a CI job cancelled) into an interrupt so the teardowns still run."""
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        # Only when a test here asked whether namespaces work, and they do.
        if _unsupported.cache_info().currsize and _unsupported() is None:
            remove_run(os.getpid())


@pytest.fixture
def latency_supported():
    """Skips the test when hosts cannot be given a delayed link on this machine."""
    if reason := latency_unsupported_reason(netem_available()):
        pytest.skip(reason)


@pytest.fixture
def network():
    """An empty network; add hosts with ``network.add_host(name)``. Everything it holds is
    gone after the test."""
    with Network() as net:
        yield net


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the output of every process it started in the network."""
    report = yield
    net = getattr(item, "funcargs", {}).get("network")
    if report.failed and isinstance(net, Network):
        for process in net.processes():
            report.sections.append((f"output of {process.label}", process.output()))
    return report
