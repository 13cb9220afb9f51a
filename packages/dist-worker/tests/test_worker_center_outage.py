"""CenterOutage: when a worker that cannot reach its center warns, and when it gives up."""
import logging

from dist_worker.outage import CENTER_WARN_EVERY, CenterOutage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_first_failure_warns_then_every_ten_seconds_naming_address_and_error(caplog):
    clock = Clock()
    outage = CenterOutage("10.0.0.1:8787", None, clock)
    with caplog.at_level(logging.WARNING, logger="dist.worker"):
        for _ in range(60):  # a failure every half second for 30 s
            outage.failed("[Errno 111] Connection refused")
            clock.now += 0.5
    said = warnings(caplog)
    assert len(said) == 30 / CENTER_WARN_EVERY
    assert said[0] == ("cannot reach the center at 10.0.0.1:8787: [Errno 111] Connection "
                       "refused; retrying")
    assert said[1] == ("still cannot reach the center at 10.0.0.1:8787 after 10 s (21 "
                       "attempts): [Errno 111] Connection refused; retrying")
    assert not outage.expired() and outage.remaining() == float("inf")


def test_with_a_timeout_it_expires_and_says_why(caplog):
    clock = Clock()
    outage = CenterOutage("10.0.0.1:8787", 5.0, clock)
    with caplog.at_level(logging.WARNING, logger="dist.worker"):
        outage.failed("timed out")
    assert warnings(caplog)[0].endswith("retrying (giving up 5 s from now)")
    clock.now += 4.0
    outage.failed("[Errno 113] No route to host")
    assert not outage.expired() and outage.remaining() == 1.0
    clock.now += 1.0
    assert outage.expired()
    assert outage.give_up_message() == ("giving up: no center at 10.0.0.1:8787 for 5 s "
                                        "(2 attempts; last error: [Errno 113] No route to host)")
