"""``dcenter``: start the center of a dist cluster.

It binds its port before it imports the center itself (the message catalogue, the event loop,
the state machine: most of its start-up), and says where it listens at once: workers and
clients started on that line connect while it imports, the kernel holding their connections
until it serves them. With a state directory it binds only once the state is recovered, as
nothing may be told before.
"""
from __future__ import annotations

import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from dist_protocol import recent_logs
from dist_protocol.addresses import (format_address, is_loopback_host, listening_socket,
                                     reachable_host)
from dist_protocol.commandline import (CONNECTION_LIMIT_OPTIONS, LOG_LEVEL_OPTION, SECURITY_OPTIONS,
                                      CommandLine, Option)
from dist_protocol.framing import Limits
from dist_protocol.security import load_token, ssl_context

from . import __version__
from .allocator import use_system_allocator
from .defaults import DEFAULT_SATURATION

if TYPE_CHECKING:
    from .server import Center

OPTIONS = [
    Option("host", "interface to listen on", envvar="DIST_CENTER_HOST", default="127.0.0.1"),
    Option("port", "port to listen on", int, envvar="DIST_CENTER_PORT", default=8787),
    *SECURITY_OPTIONS,
    Option("heartbeat-timeout", "seconds of silence before a worker is removed", float,
           envvar="DIST_HEARTBEAT_TIMEOUT", default=5.0),
    Option("dashboard-port", "port of the web dashboard and /metrics, on the center's host "
           "(0: any free port; a taken port falls back to a free one)", int,
           envvar="DIST_DASHBOARD_PORT", default=8788),
    Option("dashboard", "serve the web dashboard", bool, envvar="DIST_DASHBOARD", default=True,
           negatable=True),
    *CONNECTION_LIMIT_OPTIONS,
    Option("scheduler-file", "write how to reach the center (its address and dashboard, as "
           "JSON; never the token) to this file, for workers and clients started with "
           "--scheduler-file / Executor(scheduler_file=) on a shared file system; removed at "
           "exit", envvar="DIST_SCHEDULER_FILE"),
    Option("state-dir", "directory where the center keeps its state (tasks, clients' keys, "
           "errors), so that started again on it after a crash, it takes up where it was "
           "[default: none, the state is in memory only]", envvar="DIST_CENTER_STATE_DIR"),
    Option("state-dir-reset", "discard the state in --state-dir and start empty (needed when "
           "it cannot be read: damaged, or written by another version)", bool,
           envvar="DIST_CENTER_STATE_DIR_RESET", default=False),
    Option("worker-saturation", "tasks without inputs sent to a worker per thread (more for "
           "short tasks); the rest wait at the center until a worker has room, so data is read "
           "only as fast as it is reduced. inf: send them all at once", float,
           envvar="DIST_WORKER_SATURATION", minimum=0.01, default=DEFAULT_SATURATION),
    LOG_LEVEL_OPTION,
]
COMMAND = CommandLine("dcenter", "Start the center: it tracks tasks and workers and decides "
                      "where work runs.", OPTIONS, __version__)


def main() -> None:
    """``python -m dist_center.cli``: as ``dcenter`` (whose entry point, ``launch``, sets the
    allocator before importing this module)."""
    use_system_allocator("dist_center.cli")
    run_program()


def run_program(argv: list[str] | None = None) -> None:
    start_center(**COMMAND.run(argv))


def start_center(*, host: str, port: int, token_file: str | None, no_auth: bool,
                 tls_cert: str | None, tls_key: str | None, tls_ca: str | None,
                 heartbeat_timeout: float, dashboard_port: int, dashboard: bool,
                 max_frames: int, max_frame_bytes: int, max_batch_bytes: int | None,
                 handshake_timeout: float, state_dir: str | None, state_dir_reset: bool,
                 worker_saturation: float, log_level: str, scheduler_file: str | None = None,
                 **_: Any) -> None:
    """Start the center: it tracks tasks and workers and decides where work runs."""
    token = load_token(token_file=token_file)
    if not token and not no_auth and not is_loopback_host(host):
        print(f"dcenter: refusing to listen on {host} without a token: anyone who can reach it "
              "could run code here. Set DIST_TOKEN (or --token-file FILE) on the center, its "
              "workers and clients, or pass --no-auth to accept that risk.", file=sys.stderr)
        raise SystemExit(2)
    try:
        limits = Limits.for_options(max_frames, max_frame_bytes, max_batch_bytes)
    except ValueError as exc:
        COMMAND.fail(str(exc))
    scheme = "tls" if (tls_cert or tls_key) else "tcp"
    tls = ssl_context(True, tls_cert, tls_key, tls_ca)
    sock = None
    if state_dir is None:
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            print(f"dcenter: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    if sock is not None:
        announce(sock, scheme)

    import logging

    from dist_protocol.comm import raise_open_file_limit, run, tune_garbage_collector

    from .server import Center
    from .store import StateDirError

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    recent_logs.install()  # (the newest lines, for a client's get_worker/scheduler_logs)
    raise_open_file_limit()
    tune_garbage_collector()
    center = Center(format_address(host, port, scheme), token=token, ssl_context=tls,
                    heartbeat_timeout=heartbeat_timeout,
                    dashboard_port=dashboard_port if dashboard else None, limits=limits,
                    handshake_timeout=handshake_timeout, state_dir=state_dir,
                    state_dir_reset=state_dir_reset, worker_saturation=worker_saturation)
    try:
        run(serve(center, sock, scheduler_file))
    except StateDirError as exc:
        print(f"dcenter: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"dcenter: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def announce(sock: socket.socket, scheme: str) -> None:
    """Say where the center listens, as ``serve`` does once it serves (the same address)."""
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"Start center at {format_address(reachable_host(bound_host), bound_port, scheme)}",
          flush=True)


async def serve(center: Center, sock: socket.socket | None = None,
                scheduler_file: str | None = None) -> None:
    """Start ``center`` (on ``sock`` if it is already bound and announced) and serve until it
    closes; with ``scheduler_file``, say there how to reach it while it serves."""
    import asyncio
    import signal

    await center.start(sock)
    if sock is None:
        print(f"Start center at {center.address}", flush=True)
    if center.dashboard is not None:
        print(f"Dashboard at {center.dashboard.url}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(center.close()))
    if scheduler_file is None:
        await center.closed.wait()
        return
    from dist_protocol.scheduler_file import remove_scheduler_file

    center_id = publish(center, scheduler_file)
    if center_id is None:
        await center.close()
        raise SystemExit(1)
    try:
        await center.closed.wait()
    finally:  # a clean exit only: a center killed leaves it for the next one to replace
        remove_scheduler_file(scheduler_file, center_id)


def publish(center: Center, path: str) -> str | None:
    """Write the scheduler file for ``center``; the id written, or None (said why) if it could
    not be written."""
    from dist_protocol.scheduler_file import center_identity, write_scheduler_file

    dashboard = center.dashboard
    identity = center_identity(center.address, started=center.started,
                               dashboard_url=None if dashboard is None else dashboard.url,
                               dashboard_port=None if dashboard is None else dashboard.port)
    try:
        write_scheduler_file(path, identity)
    except OSError as exc:
        print(f"dcenter: cannot write the scheduler file {path}: {exc}", file=sys.stderr)
        return None
    print(f"Scheduler file at {os.path.abspath(path)}", flush=True)
    return str(identity["id"])


if __name__ == "__main__":
    main()
