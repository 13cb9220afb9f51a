"""``dworker CENTER_ADDRESS``: start a worker (under a nanny that restarts it, by default)."""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, NoReturn

from dist_protocol import recent_logs, task_context
from dist_protocol.addresses import is_loopback_host, local_address_towards, parse_address
from dist_protocol.comm import raise_open_file_limit, run, tune_garbage_collector
from dist_protocol.commandline import (CONNECTION_LIMIT_OPTIONS, LOG_LEVEL_OPTION, SECURITY_OPTIONS,
                                      CommandLine, Option)
from dist_protocol.compression import available, preference
from dist_protocol.errors import HandshakeError
from dist_protocol.framing import Limits
from dist_protocol.scheduler_file import SchedulerFileError, wait_for_scheduler_file
from dist_protocol.security import load_token, ssl_context

from . import __version__
from .leftovers import end_leftovers
from .memory import (DEFAULT_FRACTIONS, OFF, MemoryPolicy, parse_bytes, parse_fraction,
                     parse_memory_limit)
from .nanny import KILLED_EXIT_CODE, STOPPED_LIMIT, announce_address, supervise
from .nanny import TERMINATED as NANNY_SAYS_TERMINATED
from .nanny import channel as nanny_channel
from .server import NO_CENTER_EXIT_CODE, Worker
from .spill import SPILL_CODECS
from .sigterm_watch import SigtermWatch
from .vouching import Voucher, nanny_connector
from .standard_streams import keep_standard_descriptors
from .task_signals import (disarm_timers, ignore_signals, survive_signals,
                           survived_signals)

OPTIONS = [
    Option("center", "the center's address, HOST:PORT (or give --scheduler-file)",
           envvar="DIST_CENTER", positional=True, metavar="CENTER_ADDRESS", required=False),
    Option("scheduler-file", "read the center's address from this file, written by "
           "dcenter --scheduler-file on a shared file system: waits for it to appear (up to "
           "--timeout), and reads it again whenever the center is lost, as a center started "
           "again may be elsewhere", envvar="DIST_SCHEDULER_FILE"),
    Option("host", "interface to listen on [default: the one that reaches the center]",
           envvar="DIST_WORKER_HOST"),
    Option("port", "port to listen on (0: any free port)", int, envvar="DIST_WORKER_PORT",
           default=0),
    Option("nthreads", "threads running tasks [default: cores]", int, envvar="DIST_NTHREADS"),
    Option("name", "a name for workers= restrictions", envvar="DIST_WORKER_NAME"),
    Option("contact-address", "HOST:PORT peers should use to reach this worker (NAT, "
           "containers)", envvar="DIST_CONTACT_ADDRESS"),
    Option("memory-limit", "memory this worker may use: bytes (4GB, 512MiB), a fraction of the "
           "machine's (0.5; the cgroup limit where set), auto (the machine's, shared out by "
           "threads), or 0 for none; it spills, pauses and restarts at the fractions below "
           "[default: auto]",
           envvar="DIST_MEMORY_LIMIT"),
    Option("memory-target-fraction", "spill results to disk once they pass this fraction of "
           "the limit, those no queued task reads first (off: never)",
           envvar="DIST_MEMORY_TARGET_FRACTION",
           default=str(DEFAULT_FRACTIONS["target"])),
    Option("memory-spill-fraction", "spill also when the whole process passes this fraction "
           "(off: never)", envvar="DIST_MEMORY_SPILL_FRACTION",
           default=str(DEFAULT_FRACTIONS["spill"])),
    Option("memory-pause-fraction", "start no new task above this fraction, until memory falls "
           "(off: never)", envvar="DIST_MEMORY_PAUSE_FRACTION",
           default=str(DEFAULT_FRACTIONS["pause"])),
    Option("memory-terminate-fraction", "under a nanny, restart the worker above this fraction "
           "(off: never)", envvar="DIST_MEMORY_TERMINATE_FRACTION",
           default=str(DEFAULT_FRACTIONS["terminate"])),
    Option("local-directory", "where results are spilled to disk (a folder of this worker's is "
           "made there and removed at exit) [default: the system's temporary folder]",
           envvar="DIST_LOCAL_DIRECTORY"),
    Option("max-spill", "most bytes spilled to disk; past it, results that no longer fit "
           "stay in memory, the worker says it cannot spill and pauses while its memory is "
           "past the target, as with a full disk (one result larger than the limit itself "
           "stays without a pause, which could not free it) [default: as much as the disk "
           "holds]", envvar="DIST_MAX_SPILL"),
    Option("spill-compression", "how spilled frames that compress well are compressed: lz4 "
           "(fast), zstd (often half the size again for about three times the CPU: for a slow "
           "or small disk) or none", envvar="DIST_SPILL_COMPRESSION", default="lz4"),
    Option("resources", 'abstract resources tasks can ask for with resources=, e.g. '
           '"GPU=2 MEM=10e9"', envvar="DIST_RESOURCES"),
    Option("nanny", "restart the worker process when it dies", bool, envvar="DIST_NANNY",
           default=True, negatable=True),
    Option("stopped-limit", "under a nanny, seconds the worker process may stay stopped "
           "(SIGSTOP, a task's or anyone's) before the nanny kills it and starts another",
           float, envvar="DIST_STOPPED_LIMIT", default=STOPPED_LIMIT, minimum=0),
    *SECURITY_OPTIONS,
    Option("heartbeat-interval", "seconds between heartbeats", float,
           envvar="DIST_HEARTBEAT_INTERVAL", default=0.5),
    *CONNECTION_LIMIT_OPTIONS,
    Option("timeout", "give up (exit with status 3) after this many seconds without a center, "
           "at start or after losing it [default: keep trying forever]", float,
           envvar="DIST_WORKER_TIMEOUT", minimum=0),
    LOG_LEVEL_OPTION,
]
COMMAND = CommandLine("dworker", "Start a worker that registers with the center at "
                      "CENTER_ADDRESS (or the one --scheduler-file names).", OPTIONS,
                      __version__)


def main(argv: list[str] | None = None) -> None:
    start_worker(**COMMAND.run(argv))


def bad_option(name: str, message: str) -> NoReturn:
    COMMAND.fail(f"Invalid value for '--{name}': {message}")


# As dask's workers: without a limit a worker holding more than the machine's memory would be
# killed by the system, its results lost, instead of spilling them to disk.
DEFAULT_MEMORY_LIMIT = "auto"


def memory_options(memory_limit: str | None, nthreads: int | None, fractions: dict[str, str],
                   max_spill: str | None) -> tuple[MemoryPolicy, int | None]:
    """The memory policy and spill cap from the command line; bad values are usage errors."""
    threads = nthreads or os.cpu_count() or 1
    try:
        limit = parse_memory_limit(
            DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit, threads)
    except ValueError as exc:
        if memory_limit is not None:
            bad_option("memory-limit", str(exc))
        limit = 0  # the machine's share is too small for a limit to mean anything: none
    parsed = {}
    for name, text in fractions.items():
        try:
            parsed[name] = parse_fraction(text, name)
        except ValueError as exc:
            bad_option(f"memory-{name}-fraction", str(exc))
    try:
        cap = parse_bytes(max_spill) if max_spill and max_spill.lower() not in OFF else None
    except ValueError as exc:
        bad_option("max-spill", str(exc))
    return MemoryPolicy(limit=limit, **parsed), cap


def parse_resources(text: str) -> dict[str, float]:
    """``"GPU=2 MEM=10e9"`` (or comma-separated) -> ``{"GPU": 2.0, "MEM": 1e10}``."""
    resources = {}
    for item in text.replace(",", " ").split():
        name, sep, amount = item.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not sep or not name or value < 0:
            bad_option("resources", f"cannot read {item!r} as NAME=AMOUNT (e.g. GPU=2)")
        resources[name] = value
    return resources


def start_worker(*, center: str | None, host: str | None, port: int, nthreads: int | None,
                 name: str | None, contact_address: str | None, memory_limit: str | None,
                 memory_target_fraction: str, memory_spill_fraction: str,
                 memory_pause_fraction: str, memory_terminate_fraction: str,
                 local_directory: str | None, max_spill: str | None, spill_compression: str,
                 resources: str | None, nanny: bool, stopped_limit: float,
                 token_file: str | None, no_auth: bool,
                 tls_cert: str | None, tls_key: str | None, tls_ca: str | None,
                 heartbeat_interval: float, max_frames: int, max_frame_bytes: int,
                 max_batch_bytes: int | None, handshake_timeout: float, timeout: float | None,
                 log_level: str, scheduler_file: str | None = None, **_: Any) -> None:
    """Start a worker that registers with the center at CENTER_ADDRESS."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    recent_logs.install()  # (the newest lines, for a client's get_worker/scheduler_logs)
    center = center_address(center, scheduler_file, timeout)
    fractions = {"target": memory_target_fraction, "spill": memory_spill_fraction,
                 "pause": memory_pause_fraction, "terminate": memory_terminate_fraction}
    policy, spill_cap = memory_options(memory_limit, nthreads, fractions, max_spill)
    declared = parse_resources(resources) if resources else {}
    spill_compression = spill_compression.strip().lower()
    if spill_compression not in SPILL_CODECS or not (spill_compression == "none"
                                                     or available(spill_compression)):
        usable = [c for c in SPILL_CODECS if c == "none" or available(c)]
        bad_option("spill-compression",
                   f"{spill_compression!r}: choose one of {', '.join(usable)}")
    try:
        preference()  # what data sent to other hosts is compressed with (DIST_COMPRESSION)
    except ValueError as exc:
        COMMAND.fail(str(exc))
    try:
        limits = Limits.for_options(max_frames, max_frame_bytes, max_batch_bytes)
    except ValueError as exc:
        COMMAND.fail(str(exc))
    token = load_token(token_file=token_file)
    listen_host = host or listening_host_for(center)
    if not token and not no_auth and not is_loopback_host(listen_host):
        print(f"dworker: refusing to listen on {listen_host} without a token: anyone who can "
              "reach it could run code here. Set DIST_TOKEN (or --token-file FILE) on the "
              "center, its workers and clients, or pass --no-auth to accept that risk.",
              file=sys.stderr)
        raise SystemExit(2)

    watch: SigtermWatch | None = None  # (who sent a SIGTERM, without a nanny: set below)

    def start() -> None:
        raise_open_file_limit()
        tune_garbage_collector()
        worker = Worker(center, host=host, port=port, nthreads=nthreads, name=name, token=token,
                        ssl_server=ssl_context(True, tls_cert, tls_key, tls_ca),
                        ssl_client=ssl_context(False, tls_cert, tls_key, tls_ca),
                        contact_address=contact_address, heartbeat_interval=heartbeat_interval,
                        memory_policy=policy, local_directory=local_directory,
                        max_spill=spill_cap, spill_compression=spill_compression,
                        resources=declared, limits=limits,
                        handshake_timeout=handshake_timeout, center_timeout=timeout,
                        scheduler_file=scheduler_file)
        leave_signals_to_forked_children(nanny)
        try:
            run(serve(worker, watch))
        except HandshakeError as exc:
            print(f"dworker: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except NoCenter as exc:
            print(f"dworker: {exc}", file=sys.stderr)
            raise SystemExit(NO_CENTER_EXIT_CODE) from None
        except OSError as exc:
            print(f"dworker: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        finally:
            ignore_signals(survived_signals(nanny))

    if nanny:
        connect_to = nanny_connector(center, token, ssl_context(False, tls_cert, tls_key, tls_ca))
        raise SystemExit(supervise(start, local_directory, stopped_limit,
                                   lambda pid, address_fd: Voucher(pid, address_fd, connect_to)))
    watch = SigtermWatch.start()  # (before the worker starts any thread)
    try:
        start()
    except SystemExit as exc:
        end_leftovers()
        exit_past_task_threads(exc.code)
    end_leftovers()
    exit_past_task_threads(0)


def leave_signals_to_forked_children(nanny: bool) -> None:
    """A process a task forks (``multiprocessing``'s fork start method, ``os.fork()``) gets
    the signal handling the worker had before its event loop took SIGINT and SIGTERM (and the
    signals it survives, ``task_signals``). As inherited, a signal to the child was written to
    the loop's wake-up socket, which the child shares with the worker: a ``Pool.terminate()``
    in a task stopped the worker itself."""
    before = {number: signal.getsignal(number)
              for number in (signal.SIGINT, signal.SIGTERM, *survived_signals(nanny))}

    def in_child() -> None:
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # (sigterm_watch's)
        for number, handler in before.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)

    os.register_at_fork(after_in_child=in_child)


# How long the exit handlers (``atexit``) get when a worker without a nanny stops.
EXIT_HANDLERS_TIMEOUT = 10.0


def exit_past_task_threads(code: str | int | None) -> NoReturn:
    """Exit as ``SystemExit(code)`` does, except that threads tasks started and left running
    (not daemons) are not waited for: the interpreter would join them at exit, so a stopped
    worker would never end; nor, past ``EXIT_HANDLERS_TIMEOUT``, exit handlers that tasks
    registered (``atexit.register(pool.join)``, say), for the same reason. (A worker under a
    nanny ends with ``os._exit`` anyway, as one of dask's does: no handler runs there.)"""
    if not _exit_handlers_ran(EXIT_HANDLERS_TIMEOUT):
        _write_quietly(sys.stderr, f"dworker: not waiting for exit handlers (atexit) that "
                                   f"tasks registered: still running after "
                                   f"{EXIT_HANDLERS_TIMEOUT:g} s\n")
        _write_quietly(sys.stdout, "")
        os._exit(0 if code is None else code if isinstance(code, int) else 1)
    left = [thread.name for thread in threading.enumerate()
            if not thread.daemon and thread is not threading.main_thread()]
    if not left:
        raise SystemExit(code)
    said = f"dworker: not waiting for {len(left)} thread(s) that tasks started: {', '.join(left)}"
    if isinstance(code, str):
        said, code = f"{code}\n{said}", 1
    _write_quietly(sys.stderr, said + "\n")
    _write_quietly(sys.stdout, "")
    os._exit(0 if code is None else code)


def _exit_handlers_ran(timeout: float) -> bool:
    """Run the exit handlers now, on a thread of their own, and whether they all returned
    within ``timeout`` seconds. Run, they are forgotten: the interpreter's exit does not run
    them again."""
    handlers = threading.Thread(target=atexit._run_exitfuncs, name="dworker-exit-handlers",
                                daemon=True)
    handlers.start()
    handlers.join(timeout)
    return not handlers.is_alive()


def _write_quietly(stream: Any, text: str) -> None:
    try:  # a task may have closed or replaced the stream
        stream.write(text)
        stream.flush()
    except Exception:  # noqa: BLE001 -- on the way out, nothing is left to tell
        pass


def center_address(center: str | None, scheduler_file: str | None,
                   timeout: float | None) -> str:
    """The center's address: as given, or from the scheduler file once it appears."""
    if center is not None and scheduler_file is not None:
        COMMAND.fail("Give CENTER_ADDRESS or --scheduler-file, not both.")
    if center is not None:
        return center
    if scheduler_file is None:
        COMMAND.fail("Missing argument 'CENTER_ADDRESS' (or --scheduler-file PATH).")
    if not os.path.exists(scheduler_file):
        print(f"dworker: waiting for the scheduler file {scheduler_file}"
              + ("" if timeout is None else f" (up to {timeout:g} s)"), file=sys.stderr,
              flush=True)
    try:
        return str(wait_for_scheduler_file(scheduler_file, timeout)["address"])
    except TimeoutError as exc:
        print(f"dworker: {exc}", file=sys.stderr)
        raise SystemExit(NO_CENTER_EXIT_CODE) from None
    except SchedulerFileError as exc:
        print(f"dworker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def listening_host_for(center: str) -> str:
    """The interface the worker listens on when --host is not given (as ``Worker.start``)."""
    try:
        _, center_host, _ = parse_address(center)
    except ValueError as exc:
        COMMAND.fail(f"Invalid value for 'CENTER_ADDRESS': {exc}")
    if is_loopback_host(center_host):
        return "127.0.0.1"
    return local_address_towards(center_host)


async def serve(worker: Worker, watch: SigtermWatch | None = None) -> None:
    keep_standard_descriptors()  # (before any connection: see standard_streams)
    await worker.start()
    # Threads a task starts reach the cluster through this process's worker.
    task_context.set_process_worker(lambda: worker.task_context("", on_loop=False))
    print(f"Start worker at {worker.address}", flush=True)
    announce_address(worker.address)  # (to a nanny, which vouches for it: see vouching)
    loop = asyncio.get_running_loop()
    nanny = nanny_channel()
    survive_signals(loop, survived_signals(nanny is not None), worker.survived_signal)
    killed = False

    def terminated(at: float, nanny_gone: bool = False) -> None:
        # A SIGTERM not from the nanny (which asks over the channel) nor, without one, from an
        # operator: a task, or, under a nanny, someone who signalled this process alone. The
        # worker dies as if killed (without unregistering, so the center counts a death
        # against the tasks it was running and those it names, see ``Worker.terminated``),
        # its spilled files removed; a nanny starts a new one.
        nonlocal killed
        killed = True
        worker.terminated(at, nanny_gone)
        asyncio.ensure_future(worker.close("terminated", unregister=False))

    if nanny is None:
        def stopped_by_signal() -> None:
            asyncio.ensure_future(worker.close("signal"))

        loop.add_signal_handler(signal.SIGINT, stopped_by_signal)
        if watch is None:  # (the sender is not known here: every SIGTERM is the operator's)
            loop.add_signal_handler(signal.SIGTERM, stopped_by_signal)
        else:
            def sigterm_came_to(own: bool, at: float) -> None:
                if own:
                    terminated(at)
                else:
                    stopped_by_signal()

            def from_watch(own: bool) -> None:
                # (the time is the signal's, for the tasks it names: see sigterm_came below)
                try:
                    loop.call_soon_threadsafe(sigterm_came_to, own, time.time())
                except RuntimeError:  # the loop has closed: end as the signal's default would
                    os._exit(KILLED_EXIT_CODE)

            watch.deliver_to(from_watch)
            # One the watch did not take was sent to a thread of this process by name.
            loop.add_signal_handler(signal.SIGTERM, lambda: terminated(time.time()))
    else:
        def asked_to_stop() -> None:  # (or the nanny is gone)
            loop.remove_reader(nanny.fileno())
            try:
                said = nanny.recv(64)
            except OSError:
                said = b""
            if said.startswith(NANNY_SAYS_TERMINATED):  # a task signalled the nanny, then
                terminated(sent_at(said))
            else:
                asyncio.ensure_future(worker.close("stopped by the nanny"))

        nanny_pid = os.getppid()

        def sigterm_came(signum: int, frame: object) -> None:
            # A handler of Python's, not the loop's: it runs at once, between two bytecodes of
            # the main thread, so the time is the signal's, not that of a later pass of the
            # loop, by which the task that sent it may have ended and another started. The
            # kernel reparents this process before it sends the parent-death signal.
            try:
                # (the nanny's parent-death signal: it was killed, by ``kill -9`` of the
                # dworker's process id or by one of this worker's tasks, which are suspects)
                loop.call_soon_threadsafe(terminated, time.time(), os.getppid() != nanny_pid)
            except RuntimeError:  # the loop has closed: the worker is on its way out anyway
                pass

        loop.add_reader(nanny.fileno(), asked_to_stop)
        signal.signal(signal.SIGTERM, sigterm_came)
    # (SIGINT too under a nanny, which ignores it here: Ctrl-C is the nanny's to pass on)
    worker.keep_signal_handlers([signal.SIGINT, signal.SIGTERM,
                                 *survived_signals(nanny is not None)])
    await worker.stopped.wait()
    disarm_timers()  # (before the loop's handlers of their signals go, as it closes)
    if killed:
        raise SystemExit(KILLED_EXIT_CODE)
    if worker.refused is not None:
        raise worker.refused  # exits 2, so a nanny does not start it again
    if worker.gave_up is not None:
        raise NoCenter(worker.gave_up)


def sent_at(said: bytes) -> float:
    """The time the nanny got the signal it passes on (``nanny.TERMINATED``); now if it did
    not say."""
    try:
        return float(said.split()[1])
    except (IndexError, ValueError):
        return time.time()


class NoCenter(Exception):
    """The worker gave up on reaching its center (``--timeout``)."""


if __name__ == "__main__":
    main()
