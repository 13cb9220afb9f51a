"""The nanny of ``dworker``: the worker runs in a forked child, started again whenever it dies.

Only what the worker says on purpose stops the nanny. The child's exit code cannot say it: a
task can end its process with any code (``os._exit(0)``, ``os._exit(3)``), or send it any
signal, and the nanny must then start a new worker, as for any other death, while the center
counts the death against the task. So the two speak over a socket pair made for each child: the
nanny asks the child to stop by writing to it, and the child, on its way out by its own code,
reports the exit code it chose; a child that exits without reporting died.

The nanny takes its signals with ``sigwaitinfo`` rather than handlers, which do not learn who
sent a signal (``nanny_signals``): a SIGTERM (or SIGINT) its own worker process sent -- a task's
``os.kill(os.getppid(), SIGTERM)`` -- is passed on to the worker as a termination of its own
(it names the tasks that may have sent it, the center counts the death against them, and the
nanny starts a new worker), where one from anyone else stops the nanny and its worker. And
SIGCHLD tells it when its child stops (a task's ``os.kill(os.getpid(), SIGSTOP)``): a child
stopped for longer than ``--stopped-limit`` is killed and started again, as a dead one is,
where it would otherwise hold its tasks and values out of the cluster for ever.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

from .leftovers import adopt_orphans, end_leftovers
from .nanny_signals import SignalInbox
from .server import NO_CENTER_EXIT_CODE, RESTART_EXIT_CODE
from .vouching import Voucher
from .workspace import remove_abandoned

RESTART_BACKOFF = (0.5, 1, 2, 5)
# Set for the worker process, each unless already set. Blocks up to 32 MiB (a chunk of an array,
# a column of a frame) come from the heap and their memory is reused by the next task's. Setting
# only the trim threshold (as dask's nanny does, at 64 kB) also fixes the mapping threshold at
# 128 kB, so every array was mapped fresh and its pages faulted in and zeroed again (a third of
# the CPU of a dask.array sum). The heap keeps up to as much free at its top as the largest
# block it serves: a worker's results and the tasks' arrays come and go by tens of megabytes
# between two tasks, and with 8 MiB kept each heap (one per thread) gave the rest back and
# faulted it in again at the next task (1,500-12,000 page faults a run of a 6000² array sum
# per worker, against 500 with 32 MiB). Freed memory the heap keeps is given back when it
# matters: past the spill threshold, and after each task while the process is past the target
# (``monitor.release_unused_memory``).
CHILD_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20),
                     "MALLOC_TRIM_THRESHOLD_": str(32 << 20)}
# glibc's mallopt parameters for these variables
MALLOPT_PARAMETERS = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_MMAP_THRESHOLD_": -3}
# Exit codes that, reported by the worker itself, mean starting it again cannot help: it was
# stopped on purpose (0), its configuration is wrong (2), or it gave up on its center.
FINAL_EXIT_CODES = (0, 2, NO_CENTER_EXIT_CODE)
# The exit code of a worker that got SIGTERM from anyone but its nanny (as a shell reports it)
KILLED_EXIT_CODE = 128 + signal.SIGTERM
# What the nanny writes to its worker: stop (its operator stopped it), or die as if killed
# (the worker's own process sent the nanny a stop signal: a task did).
STOP, TERMINATED = b"stop", b"terminated"
# Seconds a stopped worker process may stay stopped before its nanny kills it (twice the
# center's default heartbeat timeout: by then the center has counted it as gone)
STOPPED_LIMIT = 10.0

_channel: socket.socket | None = None  # in the worker process: its end of the pair
_address_out: int | None = None  # in the worker process: where it tells the nanny its address


def channel() -> socket.socket | None:
    """In a worker run by a nanny: its end of the socket pair (readable when the nanny asks it
    to stop, or is gone); None in a worker without a nanny."""
    return _channel


def announce_address(address: str) -> None:
    """In a worker run by a nanny: tell the nanny the address the worker registers with, for
    which it vouches to the center (``vouching``); nothing without a nanny."""
    global _address_out
    if _address_out is None:
        return
    try:
        os.write(_address_out, address.encode("utf-8") + b"\n")
    except OSError:
        pass
    finally:
        os.close(_address_out)
        _address_out = None


def supervise(start: Callable[[], None], local_directory: str | None = None,
              stopped_limit: float = STOPPED_LIMIT,
              vouch: Callable[[int, int], Voucher] | None = None) -> int:
    """The nanny: run the worker (``start``) in a child process and start it again whenever it
    dies, or stays stopped for over ``stopped_limit`` seconds; ``local_directory`` is where the
    worker makes its spill folder (``--local-directory``); ``vouch(pid, address_fd)``, the
    nanny's word to the center for each worker process (``vouching``). The child is forked from this
    process, which has imported everything the worker needs: it starts at once, where a fresh
    interpreter would import it all again."""
    inbox = SignalInbox()
    adopt_orphans()
    failures = 0
    while True:
        started = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        nanny = os.getpid()
        ours, theirs = socket.socketpair()
        address_in, address_out = os.pipe()
        pid = os.fork()
        if pid == 0:
            ours.close()
            os.close(address_in)
            _run_child(start, nanny, theirs, inbox, address_out)  # never returns
        theirs.close()
        os.close(address_out)
        voucher = None if vouch is None else vouch(pid, address_in)
        if voucher is None:
            os.close(address_in)
        else:
            voucher.start()
        code, stopping = _Watch(pid, ours, inbox, stopped_limit).wait()
        if voucher is not None:
            voucher.stop()  # (before the processes the worker left are ended, below)
        reported = _reported(ours)
        ours.close()
        end_leftovers()
        _remove_abandoned_folders(local_directory)
        if stopping:
            return 0
        if reported in FINAL_EXIT_CODES:
            return reported
        if code == RESTART_EXIT_CODE:
            failures = 0
            continue
        failures = failures + 1 if time.monotonic() - started < 10 else 1
        delay = RESTART_BACKOFF[min(failures, len(RESTART_BACKOFF)) - 1]
        print(f"dworker: worker process exited with {code}; restarting in {delay} s",
              file=sys.stderr, flush=True)
        if _told_to_stop_within(inbox, delay):
            return 0


class _Watch:
    """The nanny's watch over one worker process ``pid``, until it ends."""

    def __init__(self, pid: int, channel: socket.socket, inbox: SignalInbox,
                 stopped_limit: float):
        self.pid = pid
        self.channel = channel
        self.inbox = inbox
        self.stopped_limit = stopped_limit
        self.stopping = False
        self.stopped_since: float | None = None  # when the child was seen stopped
        self.stopped_by = ""  # the signal that stopped it

    def wait(self) -> tuple[int, bool]:
        """The child's exit code, or minus the signal that ended it (as
        ``Popen.returncode``), and whether the nanny was told to stop meanwhile."""
        while True:
            left = (None if self.stopped_since is None
                    else self.stopped_since + self.stopped_limit - time.monotonic())
            got = self.inbox.next(left)
            if got is None:  # (stopped all that time)
                self._kill_stopped()
                continue
            if got[0] != signal.SIGCHLD:
                self._signalled(*got)
                continue
            code = self._reap()
            if code is not None:
                return code, self.stopping

    def _signalled(self, signo: int, sender: int) -> None:
        if _sent_from(sender, self.pid):  # a task of the worker's
            print(f"dworker: the worker process sent its nanny {signal.Signals(signo).name}"
                  " (a task's os.kill?): it stops as if killed, and starts again",
                  file=sys.stderr, flush=True)
            self._tell(b"%s %f" % (TERMINATED, time.time()))  # (when the task ran)
            return
        self.stopping = True
        self._tell(STOP)
        if self.stopped_since is not None:  # (a stopped child reads nothing)
            os.kill(self.pid, signal.SIGCONT)

    def _tell(self, what: bytes) -> None:
        try:
            self.channel.send(what)
        except OSError:  # it is gone already
            pass

    def _kill_stopped(self) -> None:
        print(f"dworker: the worker process has been stopped ({self.stopped_by}) for over "
              f"{self.stopped_limit:g} s (a task's os.kill?): killed, to be started again",
              file=sys.stderr, flush=True)
        self.stopped_since = None
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _reap(self) -> int | None:
        """Reap what SIGCHLD announced: the child's exit code if it ended. Processes adopted
        meanwhile (``leftovers``: a task's ``sleep 60 &``, whose shell exited) are reaped as
        they end, or each would stay a zombie for as long as the worker runs."""
        while True:
            try:
                ended, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED | os.WCONTINUED)
            except ChildProcessError:
                return 1
            if ended == 0:
                return None
            if ended != self.pid:
                continue
            if os.WIFSTOPPED(status):
                if self.stopped_since is None:
                    self.stopped_since = time.monotonic()
                    self.stopped_by = signal.Signals(os.WSTOPSIG(status)).name
            elif os.WIFCONTINUED(status):
                self.stopped_since = None
            else:
                return os.waitstatus_to_exitcode(status)


def _sent_from(sender: int, pid: int) -> bool:
    """Whether process ``sender`` is ``pid`` or runs below it (a task's ``kill`` command)."""
    for _ in range(16):
        if sender == pid:
            return True
        if sender <= 1:
            return False
        try:
            with open(f"/proc/{sender}/stat", "rb") as stat:
                sender = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def _told_to_stop_within(inbox: SignalInbox, seconds: float) -> bool:
    """Wait ``seconds`` before starting the worker again: whether a SIGINT or SIGTERM came
    meanwhile (adopted processes that end meanwhile are reaped)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        got = inbox.next(left)
        if got is None:
            return False
        if got[0] != signal.SIGCHLD:
            return True
        _reap_adopted()
    return False


def _reap_adopted() -> None:
    while True:
        try:
            ended, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if ended == 0:
            return


def _remove_abandoned_folders(local_directory: str | None) -> None:
    """A worker that died left its spill folder: removed now, not only when the next worker
    starts, since none does when the nanny is stopping."""
    try:
        remove_abandoned(tempfile.gettempdir() if local_directory is None else local_directory)
    except OSError:
        pass


def _reported(ours: socket.socket) -> int | None:
    """The exit code the worker reported before exiting; None if it died without a word."""
    ours.setblocking(False)
    try:
        said = ours.recv(64)
    except OSError:
        return None
    try:
        return int(said.decode("ascii"))
    except ValueError:
        return None


def _run_child(start: Callable[[], None], nanny: int, theirs: socket.socket,
               inbox: SignalInbox, address_out: int) -> NoReturn:
    """In the forked child: become the worker, and exit with its code (never return into
    the nanny's loop)."""
    global _channel, _address_out
    code = 1
    try:
        _channel = theirs
        _address_out = address_out
        # The nanny's handlers are not ours. A terminal's Ctrl-C reaches the whole group: the
        # nanny, which asks us to stop. SIGTERM from anyone else kills the worker (see serve).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        inbox.in_child()  # (the nanny's waits, not ours)
        _die_with_parent()
        if os.getppid() == nanny:  # (else it died before we asked to follow it: exit 1)
            os.environ["DIST_NANNY_PID"] = str(nanny)
            _child_allocator_settings()
            start()
            code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 -- reported, then the nanny decides
        _quietly(traceback.print_exc)
    finally:
        _quietly(lambda: theirs.send(str(code).encode("ascii")))
        # A task may have closed them, or replaced them with anything (``None``): looked up
        # inside, so nothing escapes before the exit below.
        _quietly(lambda: sys.stdout.flush())
        _quietly(lambda: sys.stderr.flush())
        os._exit(code)


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 -- on the way out, nothing is left to tell
        pass


def _child_allocator_settings() -> None:
    """CHILD_ENVIRONMENT for a forked worker: the C library read its variables when this
    process started (as the nanny), so what it would have read is set through ``mallopt``."""
    for name, value in CHILD_ENVIRONMENT.items():
        if name in os.environ:
            continue  # the nanny started with it: already in effect
        os.environ[name] = value  # for the worker's own child processes
        if name in MALLOPT_PARAMETERS and sys.platform.startswith("linux"):
            import ctypes
            try:
                ctypes.CDLL("libc.so.6").mallopt(MALLOPT_PARAMETERS[name], int(value))
            except (OSError, AttributeError):
                pass


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the nanny dies, so no worker outlives its nanny."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


__all__ = ["KILLED_EXIT_CODE", "STOP", "STOPPED_LIMIT", "TERMINATED", "announce_address",
           "channel", "supervise"]
