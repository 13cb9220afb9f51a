"""The nanny's word to the center that its worker process runs (``worker-alive``).

The worker's heartbeats come from its event loop, so a task that holds the interpreter lock --
a C call that never lets it go, a regular expression that backtracks for a minute -- silences
the whole process: no Python thread of it can run, a heartbeat thread no more than the loop.
The nanny is another process. Once a second it looks at its worker process; if that ran (it
used CPU time since the last look, and is neither stopped nor ended), the nanny says so on a
connection of its own, and the center keeps the silent worker (``dist_center.liveness``). A
process that waits without running (a deadlock), that is stopped, or whose host is cut off
gets no word, and the center removes it after its heartbeat timeout as before.

The worker tells the nanny its address, as it registers it, through a pipe made for each
child; the nanny's watch runs in a process of its own (``Voucher``), with an event loop of its
own, started after each worker process and ended with it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable

from dist_protocol.comm import Comm, connect
from dist_protocol.errors import HandshakeError
from dist_protocol.messages import WorkerAlive

log = logging.getLogger("dist.worker")

VOUCH_INTERVAL = 1.0  # seconds between looks at the worker process
CONNECT_TIMEOUT = 5.0
PROCESS_NAME = "dist-vouch"  # the vouching process's name (``ps``, ``psutil.Process.name``)
_NOT_RUNNING = ("stopped", "tracing-stop", "zombie", "dead")  # (psutil's status names)


class Progress:
    """Whether a process ran between two looks, from what each look saw: its status and CPU
    seconds (None: it is gone)."""

    def __init__(self) -> None:
        self._cpu: float | None = None

    def ran(self, status: str | None, cpu: float) -> bool:
        before, self._cpu = self._cpu, cpu
        if status is None or status in _NOT_RUNNING:
            return False
        return before is not None and cpu > before


def look_at(pid: int) -> tuple[str | None, float]:
    """The status and CPU seconds of process ``pid`` (status None: gone)."""
    import psutil  # (here: a worker starts without it, see process_meter)

    try:
        process = psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            return process.status(), times.user + times.system
    except psutil.Error:
        return None, 0.0


class Voucher:
    """Vouches for the worker process ``pid``, whose address arrives on ``address_fd``, to
    the center that ``connect_to`` opens the nanny's connection to.

    It runs in a process of its own (named ``PROCESS_NAME``), forked by the nanny after the
    worker: with a thread of the nanny's instead, a killed nanny's worker would first be
    handed to that thread as the kernel sends it the parent-death signal, and could not tell
    its nanny had gone. It dies with the nanny (``PR_SET_PDEATHSIG``), and the nanny ends it
    when the worker process ends (``stop``), before it forks the next."""

    def __init__(self, pid: int, address_fd: int,
                 connect_to: Callable[[], Awaitable[Comm]], interval: float = VOUCH_INTERVAL):
        self.pid = pid
        self.address_fd = address_fd
        self.connect_to = connect_to
        self.interval = interval
        self._process: int | None = None

    def start(self) -> None:
        process = os.fork()
        if process == 0:
            code = 0
            try:
                _become_voucher()
                self._run()
            except BaseException:  # noqa: BLE001 -- the nanny must outlive whatever this met
                code = 1
            finally:
                os._exit(code)
        os.close(self.address_fd)
        self._process = process

    def stop(self) -> None:
        """The worker process ended: stop vouching (the process ended and reaped here)."""
        if self._process is None:
            return
        try:
            os.kill(self._process, signal.SIGKILL)
            os.waitpid(self._process, 0)
        except (ProcessLookupError, ChildProcessError):  # (reaped by the nanny's wait)
            pass
        self._process = None

    def _run(self) -> None:
        try:
            address = _read_line(self.address_fd)
        finally:
            os.close(self.address_fd)
        if address:
            asyncio.run(self._vouch(address))

    async def _vouch(self, address: str) -> None:
        progress = Progress()
        comm: Comm | None = None
        try:
            while True:
                status, cpu = look_at(self.pid)
                if status is None:
                    return
                if progress.ran(status, cpu):
                    if comm is None or comm.is_closed:
                        try:
                            comm = await self._connect()
                        except CenterTakesNoWord:
                            return
                    if comm is not None:
                        comm.send(WorkerAlive(address=address))
                await asyncio.sleep(self.interval)
        finally:
            if comm is not None:
                comm.close("the worker process ended")

    async def _connect(self) -> Comm | None:
        """The nanny's connection; None if the center cannot be reached now (tried again at
        the next look: it may be restarting, as the worker's own connection waits for it)."""
        try:
            comm = await self.connect_to()
        except (OSError, HandshakeError, TimeoutError) as exc:
            log.debug("no connection to vouch for the worker: %s", exc)
            return None
        if "nanny-vouch" not in comm.features:
            comm.close("the center takes no worker-alive")
            raise CenterTakesNoWord
        return comm


class CenterTakesNoWord(Exception):
    """The center does not announce the feature ``nanny-vouch``: nothing to vouch to."""


def _become_voucher() -> None:
    """In the forked process: named apart from the worker (``ps``, ``psutil``), and ended
    with the nanny."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        libc.prctl(PR_SET_NAME, PROCESS_NAME.encode("ascii"))


def _read_line(fd: int) -> str:
    """One line from ``fd``; what came before the end if it ends first."""
    got = b""
    while b"\n" not in got:
        try:
            chunk = os.read(fd, 256)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def nanny_connector(center: str, token: str | None,
                    ssl_context: ssl.SSLContext | None) -> Callable[[], Awaitable[Comm]]:
    """What opens a nanny's connection to ``center``: as its worker connects, as a worker."""
    def connect_to() -> Awaitable[Comm]:
        return connect(center, role="worker", token=token, name="nanny",
                       ssl_context=ssl_context, timeout=CONNECT_TIMEOUT)
    return connect_to


__all__ = ["PROCESS_NAME", "Progress", "VOUCH_INTERVAL", "Voucher", "look_at", "nanny_connector"]
