"""``dcenter``: start the center of a dist cluster."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Annotated

import typer
from dist_protocol.addresses import format_address, is_loopback_host
from dist_protocol.comm import (HANDSHAKE_TIMEOUT, MAX_FRAMES_PER_BATCH, raise_open_file_limit,
                                run, tune_garbage_collector)
from dist_protocol.framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS, Limits
from dist_protocol.security import load_token, ssl_context

from . import __version__
from .allocator import use_system_allocator
from .placement import DEFAULT_SATURATION
from .server import Center
from .store import StateDirError

# Plain help, not rich's boxed table: at 80 columns the table cut option and variable names
# ("--heartbeat-timeo…"); click's layout wraps the descriptions instead.
app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)
LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]


def main() -> None:
    """``python -m dist_center.cli``: as ``dcenter`` (whose entry point, ``launch``, sets the
    allocator before importing this module)."""
    use_system_allocator("dist_center.cli")
    run_program()


def run_program() -> None:
    # The program's own name in usage and errors, not the ``python -m`` it may be re-run as.
    app(prog_name="dcenter")


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value.lower()


def _version(value: bool) -> None:
    if value:
        print(f"dcenter {__version__}")
        raise typer.Exit()


@app.command()
def main_command(
    host: Annotated[str, typer.Option(help="interface to listen on", envvar="DIST_CENTER_HOST")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", envvar="DIST_CENTER_PORT")] = 8787,
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
    heartbeat_timeout: Annotated[float, typer.Option(
        envvar="DIST_HEARTBEAT_TIMEOUT", help="seconds of silence before a worker is removed")]
    = 5.0,
    dashboard_port: Annotated[int, typer.Option(
        envvar="DIST_DASHBOARD_PORT", help="port of the web dashboard and /metrics, on the "
        "center's host (0: any free port; a taken port falls back to a free one)")] = 8788,
    dashboard: Annotated[bool, typer.Option("--dashboard/--no-dashboard", envvar="DIST_DASHBOARD",
                                            help="serve the web dashboard")] = True,
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
    state_dir: Annotated[str | None, typer.Option(
        envvar="DIST_CENTER_STATE_DIR", help="directory where the center keeps its state "
        "(tasks, clients' keys, errors), so that started again on it after a crash, it takes "
        "up where it was [default: none, the state is in memory only]")] = None,
    state_dir_reset: Annotated[bool, typer.Option(
        "--state-dir-reset", envvar="DIST_CENTER_STATE_DIR_RESET",
        help="discard the state in --state-dir and start empty (needed when it cannot be "
        "read: damaged, or written by another version)")] = False,
    worker_saturation: Annotated[float, typer.Option(
        envvar="DIST_WORKER_SATURATION", min=0.01,
        help="tasks without inputs sent to a worker per thread (more for short tasks); the "
             "rest wait at the center until a worker has room, so data is read only as fast "
             "as it is reduced. inf: send them all at once")] = DEFAULT_SATURATION,
    log_level: Annotated[str, typer.Option(
        envvar="DIST_LOG_LEVEL", callback=_log_level,
        help="how much to log on stderr: debug, info, warning, error or critical")] = "warning",
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Start the center: it tracks tasks and workers and decides where work runs."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    token = load_token(token_file=token_file)
    if not token and not no_auth and not is_loopback_host(host):
        print(f"dcenter: refusing to listen on {host} without a token: anyone who can reach it "
              "could run code here. Set DIST_TOKEN (or --token-file FILE) on the center, its "
              "workers and clients, or pass --no-auth to accept that risk.", file=sys.stderr)
        raise typer.Exit(2)
    try:
        limits = Limits.for_options(max_frames, max_frame_bytes, max_batch_bytes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise_open_file_limit()
    tune_garbage_collector()
    scheme = "tls" if (tls_cert or tls_key) else "tcp"
    center = Center(format_address(host, port, scheme), token=token,
                    ssl_context=ssl_context(True, tls_cert, tls_key, tls_ca),
                    heartbeat_timeout=heartbeat_timeout,
                    dashboard_port=dashboard_port if dashboard else None, limits=limits,
                    handshake_timeout=handshake_timeout, state_dir=state_dir,
                    state_dir_reset=state_dir_reset, worker_saturation=worker_saturation)
    try:
        run(serve(center))
    except StateDirError as exc:
        print(f"dcenter: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except OSError as exc:
        print(f"dcenter: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


async def serve(center: Center) -> None:
    await center.start()
    print(f"Start center at {center.address}", flush=True)
    if center.dashboard is not None:
        print(f"Dashboard at {center.dashboard.url}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(center.close()))
    await center.closed.wait()


if __name__ == "__main__":
    main()
