"""The I/O thread's timer for releases: armed once at a time, and slower while every release
goes with the caller's next message, so a loop of ``submit(...).result()`` does not wake the
I/O thread every few round trips to find nothing to send."""
from dist_client.core.release_timer import LONGEST, SHORTEST, ReleaseTimer
from dist_client.core.state import ClientState


def test_armed_once_until_it_fires():
    timer = ReleaseTimer()
    assert timer.arm() == SHORTEST
    assert timer.arm() is None  # news and a dropped Future while it is armed: no second timer
    timer.fired(releases_waiting=True)
    assert timer.arm() == SHORTEST


def test_firings_with_nothing_to_send_double_the_delay_up_to_the_longest():
    timer = ReleaseTimer()
    delays = []
    for _ in range(8):
        delays.append(timer.arm())
        timer.fired(releases_waiting=False)
    assert delays == [SHORTEST, 2 * SHORTEST, 4 * SHORTEST, 8 * SHORTEST] + [LONGEST] * 4
    assert LONGEST == 16 * SHORTEST


def test_a_firing_that_finds_releases_brings_the_shortest_delay_back():
    timer = ReleaseTimer()
    for _ in range(5):
        timer.arm()
        timer.fired(releases_waiting=False)
    timer.arm()
    timer.fired(releases_waiting=True)  # a caller dropped Futures and went quiet
    assert timer.arm() == SHORTEST


def test_the_state_says_whether_a_release_waits_for_a_message():
    state = ClientState()
    state.hold("k")
    assert not state.has_outbox()
    state.unhold("k")  # the last Future dropped: a release waits
    assert state.has_outbox()
    state.take_outbox()  # (a submit took it along)
    assert not state.has_outbox()
