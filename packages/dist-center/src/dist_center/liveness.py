"""Which workers the center takes for gone by their silence (no clocks, no I/O: times come in).

A worker's heartbeats come from its event loop, so Python code that holds the interpreter lock
-- a C call that never lets it go, a regular expression that backtracks -- silences the whole
process while its task goes on: removed after ``timeout``, the worker came back once the call
ended, and its task had meanwhile run again elsewhere. A worker's nanny is another process,
which no task holds: it says (``worker-alive``) whenever the worker process runs. A silent
worker whose nanny spoke within ``timeout`` is kept, up to ``vouched_limit`` of its own silence
(dask keeps any silent worker for its ``worker-ttl``, 5 minutes); one whose nanny is silent too
(the host suspended or cut off) or whose process waits without running (a deadlock) goes after
``timeout`` as before. A worker whose connection closes goes at once, and that is not decided
here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Silent:
    """``address`` has said nothing for ``silence`` seconds: remove it."""

    address: str
    silence: float


@dataclass(frozen=True, slots=True)
class Vouched:
    """``address`` has said nothing for ``silence`` seconds, but its nanny says its process
    runs: kept (reported once per stretch of silence)."""

    address: str
    silence: float


class Liveness:
    """When each registered worker and its nanny last spoke."""

    def __init__(self, timeout: float, vouched_limit: float):
        self.timeout = timeout
        self.vouched_limit = vouched_limit
        self._heard: dict[str, float] = {}  # the worker itself, by address
        self._vouched: dict[str, float] = {}  # its nanny, for it
        self._kept: set[str] = set()  # silent, kept: said so

    def __contains__(self, address: str) -> bool:
        return address in self._heard

    def heard(self, address: str, now: float) -> None:
        """``address`` registered, or sent something."""
        self._heard[address] = now
        self._kept.discard(address)

    def vouched(self, address: str, now: float) -> None:
        """The nanny of ``address`` says its process runs (a worker not registered: ignored,
        the nanny may speak before its worker registers, or after it left)."""
        if address in self._heard:
            self._vouched[address] = now

    def forget(self, address: str) -> None:
        self._heard.pop(address, None)
        self._vouched.pop(address, None)
        self._kept.discard(address)

    def look(self, now: float) -> list[Silent | Vouched]:
        """The workers silent past the timeout: those to remove (forgotten here), and those
        newly kept for their nanny's word."""
        found: list[Silent | Vouched] = []
        for address, heard in list(self._heard.items()):
            silence = now - heard
            if silence <= self.timeout:
                continue
            vouched = self._vouched.get(address)
            if (vouched is not None and now - vouched <= self.timeout
                    and silence <= self.vouched_limit):
                if address not in self._kept:
                    self._kept.add(address)
                    found.append(Vouched(address, silence))
                continue
            self.forget(address)
            found.append(Silent(address, silence))
        return found


__all__ = ["Liveness", "Silent", "Vouched"]
