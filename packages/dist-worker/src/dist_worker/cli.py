"""``dworker CENTER_ADDRESS``: start a worker (under a nanny that restarts it, by default)."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Annotated, NoReturn

import typer
from dist_protocol.addresses import is_loopback_host, local_address_towards, parse_address
from dist_protocol.comm import (HANDSHAKE_TIMEOUT, MAX_FRAMES_PER_BATCH, raise_open_file_limit,
                                run, tune_garbage_collector)
from dist_protocol.compression import available, preference
from dist_protocol.errors import HandshakeError
from dist_protocol.framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, Limits
from dist_protocol.security import load_token, ssl_context

from . import __version__
from .memory import (DEFAULT_FRACTIONS, OFF, MemoryPolicy, parse_bytes, parse_fraction,
                     parse_memory_limit)
from .spill import SPILL_CODECS
from .server import NO_CENTER_EXIT_CODE, RESTART_EXIT_CODE, Worker

# Plain help, not rich's boxed table: at 80 columns the table cut option and variable names
# ("--heartbeat-timeo…"); click's layout wraps the descriptions instead.
app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)
LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]


def main() -> None:
    # The program's own name in usage and errors, not the ``python -m`` it may run as.
    app(prog_name="dworker")


RESTART_BACKOFF = (0.5, 1, 2, 5)
# Set for the worker process unless already set, as dask's nanny does: glibc then returns freed
# memory to the system above 64 kB instead of 128 kB+ (which it raises as it goes), so the RSS
# the memory limits watch falls when results are released.
CHILD_ENVIRONMENT = {"MALLOC_TRIM_THRESHOLD_": "65536"}
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter for MALLOC_TRIM_THRESHOLD_


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value.lower()


def _version(value: bool) -> None:
    if value:
        print(f"dworker {__version__}")
        raise typer.Exit()


def memory_options(memory_limit: str | None, nthreads: int | None, fractions: dict[str, str],
                   max_spill: str | None) -> tuple[MemoryPolicy, int | None]:
    """The memory policy and spill cap from the command line; bad values are usage errors."""
    try:
        limit = parse_memory_limit(memory_limit, nthreads or os.cpu_count() or 1)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--memory-limit'") from None
    parsed = {}
    for name, text in fractions.items():
        try:
            parsed[name] = parse_fraction(text, name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc),
                                     param_hint=f"'--memory-{name}-fraction'") from None
    try:
        cap = parse_bytes(max_spill) if max_spill and max_spill.lower() not in OFF else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--max-spill'") from None
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
            raise typer.BadParameter(f"cannot read {item!r} as NAME=AMOUNT (e.g. GPU=2)")
        resources[name] = value
    return resources


@app.command()
def main_command(
    center: Annotated[str, typer.Argument(help="the center's address, HOST:PORT",
                                          envvar="DIST_CENTER", metavar="CENTER_ADDRESS",
                                          show_default=False)],
    host: Annotated[str | None, typer.Option(
        help="interface to listen on [default: the one that reaches the center]",
        envvar="DIST_WORKER_HOST")] = None,
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)",
                                      envvar="DIST_WORKER_PORT")] = 0,
    nthreads: Annotated[int | None, typer.Option(help="threads running tasks [default: cores]",
                                                    envvar="DIST_NTHREADS")] = None,
    name: Annotated[str | None, typer.Option(help="a name for workers= restrictions",
                                                envvar="DIST_WORKER_NAME")] = None,
    contact_address: Annotated[str | None, typer.Option(
        help="HOST:PORT peers should use to reach this worker (NAT, containers)",
        envvar="DIST_CONTACT_ADDRESS")] = None,
    memory_limit: Annotated[str | None, typer.Option(
        help="memory this worker may use: bytes (4GB, 512MiB), a fraction of the machine's "
        "(0.5; the cgroup limit where set), auto (the machine's, shared out by threads), or 0 "
        "for none; it spills, pauses and restarts at the fractions below",
        envvar="DIST_MEMORY_LIMIT")] = None,
    memory_target_fraction: Annotated[str, typer.Option(
        help="spill least-recently-used results to disk once they pass this fraction of the "
        "limit (off: never)", envvar="DIST_MEMORY_TARGET_FRACTION")] = str(
            DEFAULT_FRACTIONS["target"]),
    memory_spill_fraction: Annotated[str, typer.Option(
        help="spill also when the whole process passes this fraction (off: never)",
        envvar="DIST_MEMORY_SPILL_FRACTION")] = str(DEFAULT_FRACTIONS["spill"]),
    memory_pause_fraction: Annotated[str, typer.Option(
        help="start no new task above this fraction, until memory falls (off: never)",
        envvar="DIST_MEMORY_PAUSE_FRACTION")] = str(DEFAULT_FRACTIONS["pause"]),
    memory_terminate_fraction: Annotated[str, typer.Option(
        help="under a nanny, restart the worker above this fraction (off: never)",
        envvar="DIST_MEMORY_TERMINATE_FRACTION")] = str(DEFAULT_FRACTIONS["terminate"]),
    local_directory: Annotated[str | None, typer.Option(
        help="where results are spilled to disk (a folder of this worker's is made there and "
        "removed at exit) [default: the system's temporary folder]",
        envvar="DIST_LOCAL_DIRECTORY")] = None,
    max_spill: Annotated[str | None, typer.Option(
        help="most bytes spilled to disk; past it results stay in memory and the worker "
        "pauses [default: as much as the disk holds]", envvar="DIST_MAX_SPILL")] = None,
    spill_compression: Annotated[str, typer.Option(
        help="how spilled frames that compress well are compressed: lz4 (fast), zstd (often "
        "half the size again for about three times the CPU: for a slow or small disk) or "
        "none", envvar="DIST_SPILL_COMPRESSION")] = "lz4",
    resources: Annotated[str | None, typer.Option(
        help='abstract resources tasks can ask for with resources=, e.g. "GPU=2 MEM=10e9"',
        envvar="DIST_RESOURCES")] = None,
    nanny: Annotated[bool, typer.Option(help="restart the worker process when it dies",
                                        envvar="DIST_NANNY")] = True,
    token_file: Annotated[str | None, typer.Option(help="file holding the shared token "
                                                      "(or set DIST_TOKEN)",
                                                      envvar="DIST_TOKEN_FILE")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="allow a non-loopback address "
                                          "without a token (anyone who can connect runs code)",
                                          envvar="DIST_NO_AUTH")] = False,
    tls_cert: Annotated[str | None, typer.Option(envvar="DIST_TLS_CERT",
                                                    help="TLS certificate (PEM)")] = None,
    tls_key: Annotated[str | None, typer.Option(envvar="DIST_TLS_KEY",
                                                   help="TLS private key (PEM)")] = None,
    tls_ca: Annotated[str | None, typer.Option(envvar="DIST_TLS_CA",
                                                  help="CA to verify peers (mutual TLS)")] = None,
    heartbeat_interval: Annotated[float, typer.Option(envvar="DIST_HEARTBEAT_INTERVAL",
                                                      help="seconds between heartbeats")] = 0.5,
    max_frames: Annotated[int, typer.Option(
        envvar="DIST_MAX_FRAMES", min=MAX_FRAMES_PER_BATCH,
        help="most frames in one batch from an authenticated peer")] = DEFAULT_LIMITS.max_frames,
    max_frame_bytes: Annotated[int, typer.Option(
        envvar="DIST_MAX_FRAME_BYTES", min=UNAUTHENTICATED_LIMITS.max_frame_bytes,
        help="largest frame from an authenticated peer, in bytes (results and payloads larger "
        "than this cannot travel)")] = DEFAULT_LIMITS.max_frame_bytes,
    max_batch_bytes: Annotated[int | None, typer.Option(
        envvar="DIST_MAX_BATCH_BYTES", help="largest batch from an authenticated peer, in bytes "
        "[default: twice --max-frame-bytes]")] = None,
    handshake_timeout: Annotated[float, typer.Option(
        envvar="DIST_HANDSHAKE_TIMEOUT", min=0.1,
        help="seconds a new connection has to authenticate")] = HANDSHAKE_TIMEOUT,
    timeout: Annotated[float | None, typer.Option(
        envvar="DIST_WORKER_TIMEOUT", min=0,
        help="give up (exit with status 3) after this many seconds without a center, at "
        "start or after losing it [default: keep trying forever]")] = None,
    log_level: Annotated[str, typer.Option(
        envvar="DIST_LOG_LEVEL", callback=_log_level,
        help="how much to log on stderr: debug, info, warning, error or critical")] = "warning",
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Start a worker that registers with the center at CENTER_ADDRESS."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    fractions = {"target": memory_target_fraction, "spill": memory_spill_fraction,
                 "pause": memory_pause_fraction, "terminate": memory_terminate_fraction}
    policy, spill_cap = memory_options(memory_limit, nthreads, fractions, max_spill)
    declared = parse_resources(resources) if resources else {}
    spill_compression = spill_compression.strip().lower()
    if spill_compression not in SPILL_CODECS or not (spill_compression == "none"
                                                     or available(spill_compression)):
        usable = [c for c in SPILL_CODECS if c == "none" or available(c)]
        raise typer.BadParameter(f"{spill_compression!r}: choose one of {', '.join(usable)}",
                                 param_hint="'--spill-compression'")
    try:
        preference()  # what data sent to other hosts is compressed with (DIST_COMPRESSION)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        limits = Limits.for_options(max_frames, max_frame_bytes, max_batch_bytes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    token = load_token(token_file=token_file)
    listen_host = host or listening_host_for(center)
    if not token and not no_auth and not is_loopback_host(listen_host):
        print(f"dworker: refusing to listen on {listen_host} without a token: anyone who can "
              "reach it could run code here. Set DIST_TOKEN (or --token-file FILE) on the "
              "center, its workers and clients, or pass --no-auth to accept that risk.",
              file=sys.stderr)
        raise typer.Exit(2)
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
                        handshake_timeout=handshake_timeout, center_timeout=timeout)
        try:
            run(serve(worker))
        except HandshakeError as exc:
            print(f"dworker: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except NoCenter as exc:
            print(f"dworker: {exc}", file=sys.stderr)
            raise typer.Exit(NO_CENTER_EXIT_CODE) from None
        except OSError as exc:
            print(f"dworker: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None

    if nanny:
        raise typer.Exit(supervise(start))
    start()


def listening_host_for(center: str) -> str:
    """The interface the worker listens on when --host is not given (as ``Worker.start``)."""
    try:
        _, center_host, _ = parse_address(center)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if is_loopback_host(center_host):
        return "127.0.0.1"
    return local_address_towards(center_host)


async def serve(worker: Worker) -> None:
    await worker.start()
    print(f"Start worker at {worker.address}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.close("signal")))
    await worker.stopped.wait()
    if worker.refused is not None:
        raise worker.refused  # exits 2, so a nanny does not start it again
    if worker.gave_up is not None:
        raise NoCenter(worker.gave_up)


class NoCenter(Exception):
    """The worker gave up on reaching its center (``--timeout``)."""


def supervise(start: Callable[[], None]) -> int:
    """The nanny: run the worker (``start``) in a child process and start it again whenever it
    dies. The child is forked from this process, which has imported everything the worker
    needs: it starts at once, where a fresh interpreter would import it all again."""
    stopping = False
    child: int | None = None  # the worker's pid while it runs

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    failures = 0
    while True:
        started = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        nanny = os.getpid()
        pid = os.fork()
        if pid == 0:
            _run_child(start, nanny)  # never returns
        child = pid
        if stopping:  # told to stop while forking: the handler had no child to pass it on to
            os.kill(pid, signal.SIGTERM)
        code = _wait(pid)
        child = None
        if stopping or code == 0:
            return 0
        if code in (2, NO_CENTER_EXIT_CODE):
            return code  # a configuration error, or no center in time: restarting cannot help
        if code == RESTART_EXIT_CODE:
            failures = 0
            continue
        failures = failures + 1 if time.monotonic() - started < 10 else 1
        delay = RESTART_BACKOFF[min(failures, len(RESTART_BACKOFF)) - 1]
        print(f"dworker: worker process exited with {code}; restarting in {delay} s",
              file=sys.stderr, flush=True)
        time.sleep(delay)
        if stopping:
            return 0


def _run_child(start: Callable[[], None], nanny: int) -> NoReturn:
    """In the forked child: become the worker, and exit with its code (never return into
    the nanny's loop)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # the nanny's handlers are not ours
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() == nanny:  # (else it died before we asked to follow it: exit 1)
            os.environ["DIST_NANNY_PID"] = str(nanny)
            _child_allocator_settings()
            start()
            code = 0
    except typer.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 -- reported, then the nanny decides
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _child_allocator_settings() -> None:
    """CHILD_ENVIRONMENT for a forked worker: the C library read its variables when this
    process started (as the nanny), so what it would have read is set through ``mallopt``."""
    for name, value in CHILD_ENVIRONMENT.items():
        if name in os.environ:
            continue  # the nanny started with it: already in effect
        os.environ[name] = value  # for the worker's own child processes
        if name == "MALLOC_TRIM_THRESHOLD_" and sys.platform.startswith("linux"):
            import ctypes
            try:
                ctypes.CDLL("libc.so.6").mallopt(M_TRIM_THRESHOLD, int(value))
            except (OSError, AttributeError):
                pass


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the nanny dies, so no worker outlives its nanny."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait(pid: int) -> int:
    """The child's exit code, or minus the signal that ended it (as ``Popen.returncode``)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 1
        return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    main()
