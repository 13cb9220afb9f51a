"""What an implementer who read only spec/ found the servers doing differently from the spec:
each case is a raw socket speaking the bytes the spec describes to a real center or worker."""
from __future__ import annotations

import os
import socket
import struct

import msgpack
import pytest

pytestmark = pytest.mark.timeout(60)


def batch(messages: list[dict], *payloads: bytes) -> bytes:
    frames = [msgpack.packb(messages, use_bin_type=True), *payloads]
    return (struct.pack(f"<Q{len(frames)}Q", len(frames), *map(len, frames))
            + b"".join(frames))


def read_batch(sock: socket.socket) -> tuple[list[dict], list[bytes]]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the server")
            data += chunk
        return data
    (n,) = struct.unpack("<Q", exactly(8))
    lengths = struct.unpack(f"<{n}Q", exactly(8 * n))
    frames = [exactly(length) for length in lengths]
    return msgpack.unpackb(frames[0], raw=False), frames


class Peer:
    """A socket that completed a tokenless handshake as ``role``."""

    def __init__(self, address: str, role: str = "client"):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        self.send([{"op": "hello", "min_version": 1, "max_version": 1, "role": role,
                    "nonce": os.urandom(32)}])
        [welcome], _ = read_batch(self.sock)
        assert welcome["op"] == "welcome" and welcome["auth"] is False

    def send(self, messages: list[dict], *payloads: bytes) -> None:
        self.sock.sendall(batch(messages, *payloads))

    def receive(self) -> list[dict]:
        return read_batch(self.sock)[0]

    def until(self, op: str) -> dict:
        while True:
            for msg in self.receive():
                if msg["op"] == op:
                    return msg
                if msg["op"] == "error":
                    raise AssertionError(f"the server closed the connection: {msg}")

    def error(self) -> dict:
        """The error the server ends the connection with."""
        messages = self.receive()
        assert messages[-1]["op"] == "error", messages
        with pytest.raises(ConnectionError):
            read_batch(self.sock)  # and then it closes
        return messages[-1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peer_of(cluster):
    opened: list[Peer] = []

    def open_peer(address: str, role: str = "client") -> Peer:
        opened.append(Peer(address, role))
        return opened[-1]
    yield open_peer
    for peer in opened:
        peer.close()


def worker_address(cluster) -> str:
    return cluster.workers[0].address


@pytest.mark.parametrize("late", [
    {"op": "authenticate", "proof": b"\x00" * 32},
    {"op": "hello", "min_version": 1, "max_version": 1, "role": "client"},
    {"op": "welcome", "version": 1, "auth": False},
])
def test_a_handshake_message_after_the_handshake_is_handshake_failed(cluster, peer_of, late):
    for address in (cluster.center.address, worker_address(cluster)):
        peer = peer_of(address)
        peer.send([late])
        error = peer.error()
        assert error["code"] == "handshake-failed", error


def test_payloads_that_break_their_serializers_rule_are_invalid_payload(cluster, peer_of):
    worker = worker_address(cluster)
    cases = [
        ({"serializer": "msgpack", "frames": [1, 2]}, [msgpack.packb(1), msgpack.packb(2)]),
        ({"serializer": "bytes", "frames": [1, 2]}, [b"a", b"b"]),
        ({"serializer": "msgpack", "frames": [1]}, [b"\xc1"]),  # not msgpack
        ({"serializer": "pickle", "frames": [1]}, [b"\x80\x05not a pickle"]),
    ]
    for payload, frames in cases:
        peer = peer_of(worker)
        peer.send([{"op": "put-data", "id": 1, "data": {"x": payload}}], *frames)
        error = peer.error()
        assert error["code"] == "invalid-payload", (payload, error)
    # and the worker goes on serving
    peer = peer_of(worker)
    peer.send([{"op": "put-data", "id": 2, "data": {"y": {"serializer": "msgpack",
                                                         "frames": [1]}}}], msgpack.packb(7))
    assert peer.until("data-stored")["keys"] == ["y"]
    assert "internal error" not in cluster.workers[0].output()


@pytest.mark.parametrize("message", [
    {"op": "replicate", "keys": ["a"], "n": -5},
    {"op": "restart", "id": 1, "timeout": -1.0},
    {"op": "scatter-plan", "id": 1, "keys": {"a": -3}},
    {"op": "submit", "tasks": [{"key": "a", "function": "math:sqrt",
                                "resources": {"GPU": float("nan")}}]},
    {"op": "submit", "tasks": [{"key": "a", "function": "math:sqrt",
                                "resources": {"GPU": -1.0}}]},
])
def test_nonsense_numbers_are_invalid_message(cluster, peer_of, message):
    peer = peer_of(cluster.center.address)
    peer.send([message])
    assert peer.error()["code"] == "invalid-message"


def test_a_key_reference_missing_from_deps_errs_the_task_naming_it(cluster, peer_of):
    center = peer_of(cluster.center.address)
    ref = msgpack.ExtType(1, b"sqrt-1")
    center.send([{"op": "submit", "tasks": [
        {"key": "sqrt-1", "function": "math:sqrt",
         "args": {"serializer": "msgpack", "frames": [1]}},
        {"key": "add-1", "function": "operator:add",  # deps left out
         "args": {"serializer": "msgpack", "frames": [2]}}]}],
        msgpack.packb([[16.0], {}]), msgpack.packb([[ref, 1], {}]))
    erred = center.until("task-erred")
    assert erred["key"] == "add-1" and erred["exception_type"] == "MissingDependency"
    assert "sqrt-1" in erred["message"]


def test_a_client_that_announced_no_features_gets_errors_as_text_only(cluster, peer_of):
    center = peer_of(cluster.center.address)
    center.send([{"op": "submit", "tasks": [
        {"key": "sqrt-neg", "function": "math:sqrt",
         "args": {"serializer": "msgpack", "frames": [1]}}]}], msgpack.packb([[-1.0], {}]))
    erred = center.until("task-erred")
    assert erred["exception_type"] == "ValueError" and "domain" in erred["message"]
    assert "exception" not in erred  # no pickle for a client that did not ask for one
