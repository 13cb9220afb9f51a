"""A small HTTP/1.1 server on asyncio streams: GET and HEAD, keep-alive, nothing else.

The dashboard answers a few read-only routes from memory, so a web framework would only add
weight to the center's install. Request heads are size-limited and idle connections time out,
so a slow or hostile client costs one small buffer and is dropped.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from dist_protocol.timeouts import wait_for

log = logging.getLogger("dist.dashboard")

MAX_HEAD_BYTES = 16 * 1024
IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may wait for its next request


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names

    def query_int(self, name: str, default: int) -> int:
        try:
            return int(self.query.get(name, [default])[0])
        except ValueError:
            return default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


# A route answers at once, or (for what the center must ask its workers) when it can.
Handler = Callable[[Request], "Response | Awaitable[Response]"]


def text_response(status: int, text: str = "") -> Response:
    return Response(status, (text or HTTPStatus(status).phrase).encode() + b"\n")


class BadRequest(Exception):
    def __init__(self, status: int, message: str = ""):
        super().__init__(message)
        self.status = status


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SINGLE_HEADERS = frozenset({"host"})


def _content_length(value: str) -> str:
    """One length, however often repeated; differing lengths are an error (RFC 9112 6.3):
    taking either one lets a request hide another inside its body."""
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1:
        raise BadRequest(400, "conflicting Content-Length headers")
    length = lengths.pop()
    if not length.isdigit() or not length.isascii():
        raise BadRequest(400, "malformed Content-Length")
    return length


def parse_head(head: bytes) -> Request:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(505)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        # No space before the colon and no folded continuation lines (RFC 9112 5.1, 5.2):
        # parsers that read them differently are how requests get smuggled past a proxy.
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "malformed header")
        name, value = name.lower(), value.strip(" \t")
        if name in headers:
            if name in _SINGLE_HEADERS:
                raise BadRequest(400, f"more than one {name} header")
            value = f"{headers[name]}, {value}"  # repeated fields are one comma-joined list
        headers[name] = value
    if "content-length" in headers:
        headers["content-length"] = _content_length(headers["content-length"])
    headers[":version"] = version
    # Imported at the first request, not while the center starts: it imports ipaddress.
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(target)
    return Request(method, unquote(parts.path) or "/", parse_qs(parts.query), headers)


def wants_keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.headers[":version"] == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


class HttpServer:
    def __init__(self, handler: Handler):
        self.handler = handler
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port bound."""
        self._server = await asyncio.start_server(self._serve, host, port,
                                                  limit=MAX_HEAD_BYTES)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            keep_alive = True
            while keep_alive:
                try:
                    head = await wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send(writer, "GET", text_response(431), keep_alive=False)
                    return
                try:
                    request = parse_head(head[:-4])
                    keep_alive = wants_keep_alive(request)
                    response = await self._respond(request)
                except BadRequest as exc:
                    request, keep_alive = None, False
                    response = text_response(exc.status, str(exc))
                if response.status >= 400 and request is not None and request.method not in (
                        "GET", "HEAD"):
                    keep_alive = False  # a body we did not read may follow
                await self._send(writer, request.method if request else "GET", response,
                                 keep_alive)
        except ConnectionError:
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = text_response(405)
            response.headers["Allow"] = "GET, HEAD"
            return response
        if request.headers.get("content-length", "0") not in ("", "0") or \
                "transfer-encoding" in request.headers:
            raise BadRequest(400, "GET and HEAD take no body")
        try:
            answer = self.handler(request)
            return await answer if inspect.isawaitable(answer) else answer
        except Exception:
            log.exception("dashboard: error answering %s", request.path)
            return text_response(500)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, method: str, response: Response,
                    keep_alive: bool) -> None:
        phrase = HTTPStatus(response.status).phrase
        headers = {"Content-Type": response.content_type,
                   "Content-Length": str(len(response.body)),
                   "Cache-Control": "no-store",
                   "X-Content-Type-Options": "nosniff",
                   "Connection": "keep-alive" if keep_alive else "close",
                   **response.headers}
        head = f"HTTP/1.1 {response.status} {phrase}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        if method != "HEAD":
            writer.write(response.body)
        await writer.drain()
