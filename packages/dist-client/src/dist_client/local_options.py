"""The keywords that shape the local cluster of ``Executor()`` (and ``LocalCluster``), as
dask.distributed's ``Client()``/``LocalCluster()`` take them, read into what dist starts.
Pure decisions: nothing here starts or imports a server.

* ``processes`` -- subprocesses (the default) or, with ``False``, the center and workers in
  this process on an event loop thread of their own (``inprocess.py``);
* ``n_workers``/``threads_per_worker`` -- dask's defaults when not given;
* ``dashboard_address`` -- the center's dashboard: ``None``/``False`` for none, or where;
* ``silence_logs`` -- the level below which the cluster's servers say nothing;
* ``local_directory`` -- where the workers keep their spill folders.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from dist_protocol.addresses import is_loopback_host

# The center's own default dashboard port (``dcenter --dashboard-port``): a taken port falls
# back to a free one, so two local clusters never fight over it.
DEFAULT_DASHBOARD_PORT = 8788
DEFAULT_DASHBOARD_ADDRESS = f":{DEFAULT_DASHBOARD_PORT}"
DEFAULT_LOG_LEVEL = logging.WARNING  # as dask's ``silence_logs`` default


class NotGiven:
    """A keyword left out (``None`` means something of its own for some of them)."""

    def __repr__(self) -> str:
        return "<not given>"


NOT_GIVEN: Any = NotGiven()


@dataclass(frozen=True)
class LocalOptions:
    """What the local cluster is started with, each keyword as given (``NOT_GIVEN`` when not),
    for ``LocalCluster(**options.given())``."""

    n_workers: Any = NOT_GIVEN
    threads_per_worker: Any = NOT_GIVEN
    memory_limit: Any = NOT_GIVEN
    processes: Any = NOT_GIVEN
    dashboard_address: Any = NOT_GIVEN
    silence_logs: Any = NOT_GIVEN
    local_directory: Any = NOT_GIVEN

    def given(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items()
                if value is not NOT_GIVEN and not (name in _NONE_IS_UNSET and value is None)}


# For these, ``None`` is the same as leaving them out (for ``dashboard_address`` it says
# something: no dashboard).
_NONE_IS_UNSET = ("n_workers", "threads_per_worker", "memory_limit", "processes",
                  "silence_logs", "local_directory")


def workers_and_threads(processes: bool, n_workers: int | None, threads_per_worker: int | None,
                        cores: int) -> tuple[int, int]:
    """How many workers, of how many threads, when not said, as dask chooses: in-process, one
    worker with a thread per core (threads share one interpreter, so more workers would only
    split the same process); as subprocesses, up to 4 workers sharing the cores. A number of
    workers without threads shares the cores out, rounding up (as dask: overcommit rather than
    leave a core idle)."""
    cores = max(1, cores)
    if n_workers is None:
        if threads_per_worker is None:
            n_workers = min(cores, 4) if processes else 1
        else:
            n_workers = max(1, cores // threads_per_worker) if processes else 1
    if threads_per_worker is None:
        threads_per_worker = (max(1, cores // max(1, n_workers)) if processes
                              else max(1, math.ceil(cores / max(1, n_workers))))
    return n_workers, threads_per_worker


def dashboard_port(dashboard_address: Any, host: str) -> int | None:
    """The port of the center's dashboard for ``dashboard_address`` (``None``: no dashboard).

    ``None``/``False``: none; ``True``: the default; a port number or ``":PORT"`` (``":0"``:
    any free port); ``"HOST:PORT"`` where HOST is the cluster's ``host`` -- the center serves
    its dashboard on its own interface (``LocalCluster(host=...)`` chooses it)."""
    if dashboard_address is None or dashboard_address is False:
        return None
    if dashboard_address is True:
        return DEFAULT_DASHBOARD_PORT
    if isinstance(dashboard_address, int):
        return _port(dashboard_address, dashboard_address)
    if not isinstance(dashboard_address, str):
        raise TypeError(f"dashboard_address must be ':PORT', 'HOST:PORT', a port number, or "
                        f"None for no dashboard, not {type(dashboard_address).__name__}")
    text = dashboard_address.strip()
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    wanted_host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"dashboard_address {dashboard_address!r} has no port: write ':PORT' "
                         "(':0' for any free port) or 'HOST:PORT'")
    wanted_host = wanted_host.strip("[]")
    if wanted_host and not _same_interface(wanted_host, host):
        raise ValueError(f"dashboard_address {dashboard_address!r}: the center serves its "
                         f"dashboard on its own interface ({host}); write ':PORT', or start "
                         f"the cluster on {wanted_host} with host={wanted_host!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"dashboard_address {dashboard_address!r}: {port_text!r} is not a "
                         "port number") from None
    return _port(port, dashboard_address)


def _port(port: int, given: Any) -> int:
    if isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"dashboard_address {given!r}: a port is between 0 and 65535")
    return port


def _same_interface(one: str, other: str) -> bool:
    return one == other or (is_loopback_host(one) and is_loopback_host(other))


def log_level(silence_logs: Any) -> int | None:
    """The level below which the cluster's servers log nothing (``None``: as they would
    anyway). dask's ``silence_logs``: a level (``logging.ERROR``, ``"error"``); ``True`` is
    its default, warnings and worse; ``False``/``None`` leaves logging alone."""
    if silence_logs is None or silence_logs is False:
        return None
    if silence_logs is True:
        return DEFAULT_LOG_LEVEL
    if isinstance(silence_logs, int):
        return silence_logs
    if isinstance(silence_logs, str):
        level = logging.getLevelName(silence_logs.strip().upper())
        if isinstance(level, int):
            return level
    raise ValueError(f"silence_logs must be a logging level (logging.ERROR, 'error', ...), "
                     f"True, False or None, not {silence_logs!r}")


def level_name(level: int) -> str:
    """A level as ``--log-level`` takes it (the nearest named level at or below)."""
    for name, value in (("critical", logging.CRITICAL), ("error", logging.ERROR),
                        ("warning", logging.WARNING), ("info", logging.INFO)):
        if level >= value:
            return name
    return "debug"


# dask's keywords that have no meaning for dist, and why: refused with the reason rather
# than accepted and ignored.
UNSUPPORTED = {
    "protocol": "dist's servers speak TCP (TLS with tls_cert=); in-process they still use "
                "loopback TCP -- processes=False runs them in this process",
    "worker_class": "dist's local cluster runs dist workers only",
    "worker_dashboard_address": "dist's workers serve no dashboard: the center's dashboard "
                                "(dashboard_address=) shows them",
    "scheduler_port": "the local center listens on a free port; Executor(address) connects "
                      "to a center you started on a port of your choice (dcenter --port)",
    "interface": "give host= (the local cluster listens on that address)",
    "loop": "the executor runs its own I/O loop on a thread of its own",
    "security": "dist's executor takes tls_cert=, tls_key=, tls_ca= and token=",
    "direct_to_workers": "dist's client always talks to the workers directly for data",
    "heartbeat_interval": "set DIST_HEARTBEAT_INTERVAL for the workers",
    "serializers": "dist chooses the serializer of each payload (msgpack, pickle, bytes)",
    "deserializers": "dist chooses the serializer of each payload (msgpack, pickle, bytes)",
}


def refuse(keywords: dict[str, Any], who: str) -> None:
    """A clear ``TypeError`` for keywords ``who`` does not take, the first of them named."""
    if not keywords:
        return
    name = next(iter(keywords))
    why = UNSUPPORTED.get(name)
    if why is None:
        raise TypeError(f"{who}() got an unexpected keyword argument {name!r}")
    raise TypeError(f"{who}() does not take dask's {name}=: {why}")


__all__ = ["DEFAULT_DASHBOARD_ADDRESS", "LocalOptions", "NOT_GIVEN", "dashboard_port",
           "level_name", "log_level", "refuse", "workers_and_threads"]
