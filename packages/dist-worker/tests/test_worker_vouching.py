"""The nanny's look at its worker process: it vouches only for one that ran since."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from dist_protocol.messages import WorkerAlive
from dist_worker.vouching import Progress, Voucher, _read_line, look_at


pytestmark = pytest.mark.timeout(60)


def test_a_process_ran_when_its_cpu_time_grew_and_it_is_not_stopped():
    progress = Progress()
    assert not progress.ran("running", 1.0)  # (nothing to compare with yet)
    assert progress.ran("running", 1.5)
    assert not progress.ran("sleeping", 1.5)  # waited all along: a deadlock looks so
    assert progress.ran("sleeping", 1.6)
    assert not progress.ran("stopped", 2.0)
    assert not progress.ran("zombie", 2.5)
    assert not progress.ran(None, 0.0)


def test_look_at_a_busy_process_and_a_gone_one():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        status, first = look_at(busy.pid)
        deadline = time.monotonic() + 30
        while look_at(busy.pid)[1] <= first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status is not None and look_at(busy.pid)[1] > first
    finally:
        busy.kill()
        busy.wait()
    assert look_at(busy.pid)[0] is None


def test_the_address_line_is_read_whole_or_to_its_end():
    readable, writable = os.pipe()
    os.write(writable, b"127.0.0.1:4")
    os.write(writable, b"0211\nmore")
    assert _read_line(readable) == "127.0.0.1:40211"
    os.close(writable)
    os.close(readable)
    readable, writable = os.pipe()
    os.close(writable)
    assert _read_line(readable) == ""
    os.close(readable)


class _FakeComm:
    def __init__(self, features):
        self.features = frozenset(features)
        self.sent: list = []
        self.is_closed = False

    def send(self, *messages):
        self.sent.extend(messages)

    def close(self, reason=None):
        self.is_closed = True


def _vouch_for_a_busy_process(connects, seconds: float) -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    tries = iter(connects)

    async def connect_to():
        outcome = next(tries)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def main():
        voucher = Voucher(busy.pid, -1, connect_to, interval=0.1)
        try:
            await asyncio.wait_for(voucher._vouch("tcp://w:1"), seconds)
        except asyncio.TimeoutError:
            pass
    try:
        asyncio.run(main())
    finally:
        busy.kill()
        busy.wait()


def test_a_center_not_reached_at_first_is_tried_again_at_the_next_look():
    comm = _FakeComm({"nanny-vouch"})
    _vouch_for_a_busy_process([ConnectionRefusedError(), comm], 3.0)
    assert comm.sent and all(m == WorkerAlive(address="tcp://w:1") for m in comm.sent)
    assert comm.is_closed  # (as the vouching ends)


def test_a_center_without_the_feature_gets_no_word():
    comm = _FakeComm(())
    _vouch_for_a_busy_process([comm], 3.0)
    assert comm.sent == [] and comm.is_closed
