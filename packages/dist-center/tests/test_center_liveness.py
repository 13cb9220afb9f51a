"""Which silent workers the center removes, and which it keeps for their nanny's word."""
from __future__ import annotations

import pytest

from dist_center.liveness import Liveness, Silent, Vouched


pytestmark = pytest.mark.timeout(60)


def test_a_silent_worker_is_removed_after_the_timeout_once():
    live = Liveness(timeout=5, vouched_limit=300)
    live.heard("w", 0)
    assert live.look(5) == []
    assert live.look(5.5) == [Silent("w", 5.5)]
    assert "w" not in live and live.look(20) == []


def test_a_silent_worker_its_nanny_vouches_for_is_kept_and_said_so_once():
    live = Liveness(timeout=5, vouched_limit=300)
    live.heard("w", 0)
    for now in range(1, 9):
        live.vouched("w", now)
    assert live.look(6) == [Vouched("w", 6)]
    assert live.look(8) == []  # (kept, already said)
    live.heard("w", 9)  # it speaks again: a later silence is said anew
    live.vouched("w", 10)
    assert live.look(15) == [Vouched("w", 6)]


def test_a_vouched_worker_goes_when_its_nanny_falls_silent_too():
    live = Liveness(timeout=5, vouched_limit=300)
    live.heard("w", 0)
    live.vouched("w", 4)
    assert live.look(9) == [Vouched("w", 9)]
    assert live.look(9.5) == [Silent("w", 9.5)]


def test_a_vouched_worker_goes_after_the_limit_of_its_own_silence():
    live = Liveness(timeout=5, vouched_limit=30)
    live.heard("w", 0)
    found = []
    for now in range(1, 40):
        live.vouched("w", now)
        found += live.look(now)
    assert found == [Vouched("w", 6), Silent("w", 31)]


def test_a_word_for_a_worker_not_registered_is_ignored():
    live = Liveness(timeout=5, vouched_limit=300)
    live.vouched("w", 0)
    live.heard("w", 1)
    assert live.look(7) == [Silent("w", 6)]
    live.vouched("w", 8)  # (after it left)
    assert "w" not in live
