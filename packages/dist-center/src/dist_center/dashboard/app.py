"""The dashboard's routes: the page, its JSON API, Prometheus ``/metrics`` and ``/health``.

It runs in the center's event loop and reads ``CenterState`` directly between events, so it
needs no locks. Answers that walk workers or prefixes are cached for ``CACHE_SECONDS``: however
many browsers and scrapers poll, the center does that work at most a few times a second.
"""
from __future__ import annotations

import errno
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from dist_protocol.addresses import parse_address, reachable_host

from .. import __version__
from ..state import CenterState
from . import prometheus, views
from .httpserver import HttpServer, Request, Response, text_response

log = logging.getLogger("dist.dashboard")

CACHE_SECONDS = 0.25
DEFAULT_PORT = 8788
STATIC_FILES = {  # the only files served: name -> content type
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
# Key names are user data shown on the page: allow no script but our own file.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class CenterLike(Protocol):
    state: CenterState
    address: str  # what workers and clients connect to
    bound_address: str  # where it listens: the dashboard listens on the same interface
    started: float

    async def story(self, keys: list[str]) -> list[dict[str, Any]]: ...


class TimedCache:
    """Remembers each computed value for ``ttl`` seconds of ``clock``."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._values: dict[str, tuple[float, Any]] = {}

    def get(self, name: str, compute: Callable[[], Any]) -> Any:
        now = self.clock()
        hit = self._values.get(name)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = compute()
        self._values[name] = (now, value)
        return value


def json_response(value: Any) -> Response:
    body = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    return Response(200, body, "application/json")


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class Dashboard:
    def __init__(self, center: CenterLike, host: str | None = None, port: int = DEFAULT_PORT,
                 *, cache: TimedCache | None = None, wall_clock: Callable[[], float] = time.time):
        self.center = center
        self.host = host
        self.requested_port = port
        self.port = 0
        self.cache = cache or TimedCache()
        self.wall_clock = wall_clock
        self._http = HttpServer(self.handle)
        self._static: dict[str, bytes] = {}
        self.routes: dict[str, Callable[[Request], Response | Awaitable[Response]]] = {
            "/": lambda request: self._static_file("index.html"),
            "/index.html": lambda request: self._static_file("index.html"),
            "/api/status": self._status,
            "/api/workers": self._workers,
            "/api/tasks": self._tasks,
            "/api/story": self._story,
            "/key": self._key_page,
            "/metrics": self._metrics,
            "/health": lambda request: text_response(200, "ok"),
        }

    @property
    def url(self) -> str:
        return url_for(reachable_host(self.host or "127.0.0.1"), self.port)

    async def start(self) -> None:
        """Listen on the center's host; a taken port falls back to any free one, with a warning,
        so a second cluster on one machine still gets its dashboard."""
        if self.host is None:
            _, self.host, _ = parse_address(self.center.bound_address)
        try:
            self.port = await self._http.start(self.host, self.requested_port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self.requested_port == 0:
                raise
            self.port = await self._http.start(self.host, 0)
            log.warning("dashboard port %d is in use (another cluster?): serving it on %d "
                        "instead", self.requested_port, self.port)

    async def close(self) -> None:
        await self._http.close()

    # -- routes ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | Awaitable[Response]:
        route = self.routes.get(request.path)
        if route is not None:
            return route(request)
        if request.path.startswith("/static/"):
            return self._static_file(request.path[len("/static/"):])
        return text_response(404)

    def _static_file(self, name: str) -> Response:
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            return text_response(404)
        body = self._static.get(name)
        if body is None:
            # Imported at the first page served: importlib.resources imports pathlib,
            # tempfile and the compression modules, all for nothing while the center starts.
            from importlib import resources

            body = self._static[name] = (resources.files(__package__) / "static" / name
                                         ).read_bytes()
        response = Response(200, body, content_type)
        if name == "index.html":
            response.headers["Content-Security-Policy"] = PAGE_POLICY
        return response

    def _status(self, request: Request) -> Response:
        return json_response(self.cache.get("status", lambda: views.status(
            self.center.state, address=self.center.address, version=__version__,
            started=self.center.started, now=self.wall_clock())))

    def _workers(self, request: Request) -> Response:
        return json_response({"workers": self.cache.get(
            "workers", lambda: views.worker_rows(self.center.state))})

    def _tasks(self, request: Request) -> Response:
        summary = self.cache.get("tasks", lambda: views.task_summary(self.center.state))
        stream = views.stream_since(self.center.state, request.query_int("since", 0))
        return json_response({"now": self.wall_clock(), **summary, "stream": stream})

    async def _story(self, request: Request) -> Response:
        key = request.query.get("key", [""])[0]
        if not key:
            return text_response(400, "which key? /api/story?key=KEY")
        entries = await self.center.story([key])
        from . import keypage  # the key pages' module (html) only once one is asked for

        return json_response({"key": key, "task": keypage.task_record(self.center.state, key),
                              "entries": entries})

    async def _key_page(self, request: Request) -> Response:
        key = request.query.get("key", [""])[0]
        if not key:
            return text_response(400, "which key? /key?key=KEY")
        entries = await self.center.story([key])
        from . import keypage  # as in _story

        body = keypage.render(key, keypage.task_record(self.center.state, key), entries)
        response = Response(200, body.encode(), "text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        return response

    def _metrics(self, request: Request) -> Response:
        text = self.cache.get("metrics", lambda: prometheus.render(
            self.center.state, started=self.center.started))
        return Response(200, text.encode(), prometheus.CONTENT_TYPE)
