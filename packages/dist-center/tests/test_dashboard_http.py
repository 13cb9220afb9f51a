"""The dashboard's small HTTP server on loopback: keep-alive, HEAD, limits, port fallback."""
from __future__ import annotations

import asyncio

import pytest
from dist_center.dashboard.app import Dashboard
from dist_center.dashboard.httpserver import (MAX_HEAD_BYTES, BadRequest, HttpServer, Response,
                                             parse_head)
from dist_center.state import CenterState

pytestmark = pytest.mark.timeout(30)


async def read_response(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:] if line)
    body = await reader.readexactly(int(headers["Content-Length"]))
    return head[0], headers, body


def echo_path(request) -> Response:
    return Response(200, request.path.encode())


def test_keep_alive_head_and_errors():
    async def main():
        server = HttpServer(echo_path)
        port = await server.start("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
            first = await read_response(reader)
            second = await read_response(reader)
            assert (first[0], first[2]) == ("HTTP/1.1 200 OK", b"/one")
            assert second[2] == b"/two" and second[1]["Connection"] == "keep-alive"

            writer.write(b"HEAD /three HTTP/1.1\r\nHost: x\r\n\r\n")
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            assert "Content-Length: 6" in head
            writer.write(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            status, headers, _ = await read_response(reader)
            assert status.startswith("HTTP/1.1 405") and headers["Allow"] == "GET, HEAD"
            assert await reader.read() == b"", "the unread body ends the connection"
            writer.close()

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n")
            status, _, _ = await read_response(reader)
            assert status.startswith("HTTP/1.1 431")
            writer.close()

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            status, headers, _ = await read_response(reader)
            assert headers["Connection"] == "close" and await reader.read() == b""
            writer.close()
        finally:
            await server.close()
    asyncio.run(main())


def test_a_taken_port_falls_back_to_a_free_one():
    class Center:
        state = CenterState()
        address = bound_address = "127.0.0.1:1"
        started = 0.0

    async def main():
        first = Dashboard(Center(), port=0)
        await first.start()
        second = Dashboard(Center(), port=first.port)
        await second.start()
        try:
            assert second.port not in (0, first.port)
            assert second.url == f"http://127.0.0.1:{second.port}/"
        finally:
            await first.close()
            await second.close()
    asyncio.run(main())


@pytest.mark.parametrize("head, status_or_length", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0", "0"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5", "5"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 10", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 5", 400),  # space before the colon
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded", 400),  # obsolete line folding
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b", 400),
])
def test_conflicting_or_malformed_framing_headers_are_refused(head, status_or_length):
    if isinstance(status_or_length, int):
        with pytest.raises(BadRequest) as refused:
            parse_head(head)
        assert refused.value.status == status_or_length
    else:
        assert parse_head(head).headers["content-length"] == status_or_length


def test_other_repeated_headers_are_joined_as_one_list():
    request = parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: a/b\r\naccept: c/d")
    assert request.headers["accept"] == "a/b, c/d"


def test_conflicting_content_lengths_get_400_and_the_connection_closes():
    async def main():
        server = HttpServer(echo_path)
        port = await server.start("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                         b"Content-Length: 30\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
            status, headers, body = await read_response(reader)
            assert status == "HTTP/1.1 400 Bad Request"
            assert body == b"conflicting Content-Length headers\n"
            assert headers["Connection"] == "close" and await reader.read() == b""
            writer.close()
        finally:
            await server.close()
    asyncio.run(main())
