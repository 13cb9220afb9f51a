"""A minimal dist client written from spec/PROTOCOL.md alone: stdlib sockets plus msgpack.

It imports nothing of dist. It speaks protocol version 1 as a client: hello (and the token
challenge), submit of import-path tasks with msgpack arguments, waiting for key-in-memory /
task-erred, gather (who-has, then get-data from the workers), scatter (scatter-plan, then
put-data to the workers) and release.

    python dist_mini_client.py HOST:PORT        # runs a short demonstration, prints JSON
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import struct
import sys

import msgpack

PROTOCOL_VERSION = 1
KEYREF_EXT = 1  # msgpack extension type: a reference to another key's value


class ProtocolError(Exception):
    pass


class TaskError(Exception):
    def __init__(self, key: str, exception_type: str, message: str, traceback: str):
        super().__init__(f"{key}: {exception_type}: {message}")
        self.exception_type, self.traceback = exception_type, traceback


def key_ref(key: str) -> msgpack.ExtType:
    return msgpack.ExtType(KEYREF_EXT, key.encode())


class Connection:
    """One framed, authenticated connection (to the center or to a worker)."""

    def __init__(self, address: str, token: str | None, name: str = "mini-client"):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # PROTOCOL.md, Liveness: probe the idle connection, so a vanished center ends it
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.inbox: list[dict] = []
        self._handshake(token, name)

    # framing: u64 nframes, u64 length per frame, frames (all little-endian)
    def send(self, *messages: dict, payload_frames: list[bytes] = ()) -> None:
        frames = [msgpack.packb(list(messages), use_bin_type=True), *payload_frames]
        header = struct.pack(f"<{len(frames) + 1}Q", len(frames), *map(len, frames))
        self.sock.sendall(header + b"".join(frames))

    def _read_exactly(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed by the peer")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive_batch(self) -> tuple[list[dict], list[bytes]]:
        (nframes,) = struct.unpack("<Q", self._read_exactly(8))
        lengths = struct.unpack(f"<{nframes}Q", self._read_exactly(8 * nframes))
        frames = [self._read_exactly(n) for n in lengths]
        messages = msgpack.unpackb(frames[0], raw=False)
        for msg in messages:
            if msg.get("op") == "error":
                raise ProtocolError(f"{msg['code']}: {msg['message']}")
        return messages, frames

    def receive(self) -> dict:
        while not self.inbox:
            messages, frames = self.receive_batch()
            for msg in messages:
                msg["_frames"] = frames  # payloads refer to frames of their batch by index
            self.inbox.extend(messages)
        return self.inbox.pop(0)

    def _handshake(self, token: str | None, name: str) -> None:
        nonce = os.urandom(32)
        self.send({"op": "hello", "min_version": 1, "max_version": PROTOCOL_VERSION,
                   "role": "client", "name": name, "nonce": nonce})
        welcome = self.receive()
        if welcome["op"] != "welcome":
            raise ProtocolError(f"expected welcome, got {welcome['op']}")
        if not welcome["auth"]:
            return
        if not token:
            raise ProtocolError("the server requires a token")
        expected = hmac.new(token.encode(), b"dist acceptor" + nonce + welcome["nonce"],
                            hashlib.sha256).digest()
        if not hmac.compare_digest(expected, welcome["proof"]):
            raise ProtocolError("the server does not know the token")
        proof = hmac.new(token.encode(), b"dist initiator" + welcome["nonce"] + nonce,
                         hashlib.sha256).digest()
        self.send({"op": "authenticate", "proof": proof})
        if self.receive()["op"] != "authenticated":
            raise ProtocolError("authentication failed")


def msgpack_payload(value, frame_index: int) -> tuple[dict, bytes]:
    packed = msgpack.packb(value, use_bin_type=True)
    return {"serializer": "msgpack", "frames": [frame_index]}, packed


def load_payload(payload: dict, frames: list[bytes]):
    if payload["serializer"] != "msgpack":
        raise ProtocolError(f"cannot read a {payload['serializer']} payload")
    return msgpack.unpackb(frames[payload["frames"][0]], raw=False)


class MiniClient:
    def __init__(self, address: str, token: str | None = None):
        self.token = token
        self.center = Connection(address, token)
        self.status: dict[str, dict] = {}
        self._ids = 0

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def submit(self, key: str, function: str, args=(), kwargs=None, deps=()) -> str:
        payload, frame = msgpack_payload([list(args), kwargs or {}], 1)
        task = {"key": key, "function": function, "args": payload, "deps": list(deps)}
        self.center.send({"op": "submit", "tasks": [task]}, payload_frames=[frame])
        return key

    def _handle(self, msg: dict) -> None:
        if msg["op"] in ("key-in-memory", "task-erred", "key-lost", "key-cancelled"):
            self.status[msg["key"]] = msg

    def wait(self, key: str) -> dict:
        while key not in self.status:
            self._handle(self.center.receive())
        return self.status[key]

    def _request(self, message: dict) -> dict:
        request_id = message["id"] = self._next_id()
        self.center.send(message)
        while True:
            msg = self.center.receive()
            if msg.get("id") == request_id:
                return msg
            self._handle(msg)

    def gather(self, keys: list[str]) -> dict:
        for key in keys:
            outcome = self.wait(key)
            if outcome["op"] == "task-erred":
                raise TaskError(key, outcome["exception_type"], outcome["message"],
                                outcome.get("traceback", ""))
            if outcome["op"] != "key-in-memory":
                raise ProtocolError(f"{key}: {outcome['op']}")
        who_has = self._request({"op": "who-has", "keys": keys})["who_has"]
        by_worker: dict[str, list[str]] = {}
        for key in keys:
            by_worker.setdefault(who_has[key][0], []).append(key)
        values = {}
        for address, worker_keys in by_worker.items():
            worker = Connection(address, self.token)
            worker.send({"op": "get-data", "id": 1, "keys": worker_keys,
                         "serializers": ["msgpack"]})
            reply = worker.receive()
            for key, payload in reply["data"].items():
                values[key] = load_payload(payload, reply["_frames"])
            worker.sock.close()
        return values

    def scatter(self, data: dict) -> list[str]:
        packed = {key: msgpack.packb(value, use_bin_type=True) for key, value in data.items()}
        plan = self._request({"op": "scatter-plan", "keys": {k: len(v) for k, v in packed.items()}})
        by_worker: dict[str, list[str]] = {}
        for key, targets in plan["targets"].items():
            for address in targets:
                by_worker.setdefault(address, []).append(key)
        for address, worker_keys in by_worker.items():
            worker = Connection(address, self.token)
            payloads = {key: {"serializer": "msgpack", "frames": [i + 1]}
                        for i, key in enumerate(worker_keys)}
            worker.send({"op": "put-data", "id": 1, "data": payloads},
                        payload_frames=[packed[key] for key in worker_keys])
            if worker.receive()["op"] != "data-stored":
                raise ProtocolError("the worker did not store the data")
            worker.sock.close()
        return list(data)

    def release(self, keys: list[str]) -> None:
        self.center.send({"op": "release", "keys": keys})
        for key in keys:
            self.status.pop(key, None)


def demonstrate(address: str, token: str | None) -> dict:
    client = MiniClient(address, token)
    client.scatter({"py-x": 16, "py-y": 9})
    client.submit("py-sqrt-x", "math:sqrt", [key_ref("py-x")], deps=["py-x"])
    client.submit("py-sqrt-y", "math:sqrt", [key_ref("py-y")], deps=["py-y"])
    client.submit("py-sum", "operator:add", [key_ref("py-sqrt-x"), key_ref("py-sqrt-y")],
                  deps=["py-sqrt-x", "py-sqrt-y"])
    values = client.gather(["py-sum", "py-sqrt-x", "py-x"])
    client.submit("py-bad", "math:sqrt", [-1])
    try:
        client.gather(["py-bad"])
        error = None
    except TaskError as exc:
        error = {"type": exc.exception_type, "message": str(exc),
                 "has_traceback": "Traceback" in exc.traceback}
    client.release(["py-sum", "py-sqrt-x", "py-sqrt-y", "py-x", "py-y", "py-bad"])
    return {"values": values, "error": error}


if __name__ == "__main__":
    print(json.dumps(demonstrate(sys.argv[1], os.environ.get("DIST_TOKEN"))))
