"""A dist client written from ``spec/`` alone: PROTOCOL.md for the rules, schema/messages.json
for the catalogue. The standard library and msgpack; no pickle, nothing of dist.

It is strict where the spec is: every message it receives is checked against the schema (the
op's direction, required fields, types, values, lengths, bounds, features agreed), and what it
sends is written in the canonical encoding. A server that breaks a rule fails the client with
``SpecError`` naming the rule, so the tests that run it against real servers test the spec.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import socket
import ssl
import struct
from pathlib import Path
from typing import Any

import msgpack

SPEC = Path(__file__).resolve().parents[2] / "spec"
SCHEMA = json.loads((SPEC / "schema" / "messages.json").read_text())
KEY_REFERENCE = 1  # msgpack extension type of a key reference (PROTOCOL.md, Serializers)
NONCE_BYTES = 32
# PROTOCOL.md, Limits: before the handshake completes, and the defaults after it.
LIMITS_BEFORE_HANDSHAKE = (1, 4096, 4096)
LIMITS_AFTER_HANDSHAKE = (100_000, 16 * 2**30, 32 * 2**30)
# PROTOCOL.md, Liveness: probe an idle connection, so that a vanished center ends it.
KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6))


class SpecError(Exception):
    """A violation, with the spec's error code; ``by_peer``: the other side sent ``error``."""

    def __init__(self, code: str, message: str, by_peer: bool = False):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.by_peer = code, message, by_peer


# -- framing (PROTOCOL.md, Framing) ---------------------------------------------------------
def encode_batch(frames: list[bytes]) -> bytes:
    return struct.pack(f"<{len(frames) + 1}Q", len(frames), *map(len, frames)) + b"".join(frames)


class BatchReader:
    """Bytes in, complete batches out; limits checked on the header before any frame."""

    def __init__(self, limits: tuple[int, int, int] = LIMITS_BEFORE_HANDSHAKE):
        self.limits = limits
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[list[bytes]]:
        self.buffer += data
        batches = []
        while (batch := self.next_batch()) is not None:
            batches.append(batch)
        return batches

    def next_batch(self) -> list[bytes] | None:
        """The next complete batch of the bytes fed, or None until more come."""
        buf = self.buffer
        if len(buf) < 8:
            return None
        (n,) = struct.unpack_from("<Q", buf)
        if n == 0:
            raise SpecError("malformed-frame", "a batch of zero frames")
        max_frames, max_frame, max_batch = self.limits
        if n > max_frames:
            raise SpecError("limit-exceeded", f"{n} frames")
        if len(buf) < 8 + 8 * n:
            return None
        lengths = struct.unpack_from(f"<{n}Q", buf, 8)
        if max(lengths) > max_frame or sum(lengths) > max_batch:
            raise SpecError("limit-exceeded", f"frames of {lengths} bytes")
        end = 8 + 8 * n + sum(lengths)
        if len(buf) < end:
            return None
        frames, at = [], 8 + 8 * n
        for length in lengths:
            frames.append(bytes(buf[at:at + length]))
            at += length
        del buf[:end]
        return frames


# -- payload values (PROTOCOL.md, Serializers) ----------------------------------------------
class KeyRef:
    def __init__(self, key: str):
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyRef) and other.key == self.key

    def __repr__(self) -> str:
        return f"KeyRef({self.key!r})"


def pack_value(value: Any) -> bytes:
    def default(obj: Any) -> Any:
        if isinstance(obj, KeyRef):
            return msgpack.ExtType(KEY_REFERENCE, obj.key.encode())
        raise TypeError(f"cannot pack {obj!r}")
    return msgpack.packb(value, default=default, use_bin_type=True)


def unpack_value(data: bytes) -> Any:
    def ext_hook(code: int, data: bytes) -> Any:
        return KeyRef(data.decode()) if code == KEY_REFERENCE else msgpack.ExtType(code, data)
    return msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False)


ZSTD_MOST = 2_080_374_784  # PROTOCOL.md, Payloads: the largest content size a zstd frame states


def zstd_content_size(frame: bytes) -> int | None:
    """The frame content size a Zstandard frame header states (RFC 8878, 3.1.1.1), or None."""
    if len(frame) < 5 or frame[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = frame[4]
    size_flag, single_segment, dictionary_flag = descriptor >> 6, descriptor >> 5 & 1, \
        descriptor & 3
    at = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dictionary_flag]
    width = (1 if single_segment else 0, 2, 4, 8)[size_flag]
    if width == 0 or len(frame) < at + width:
        return None
    size = int.from_bytes(frame[at:at + width], "little")
    return size + 256 if width == 2 else size


# -- the catalogue (schema/messages.json) ---------------------------------------------------
def split_alternatives(kind: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(kind):
        depth += (char == "<") - (char == ">")
        if char == "|" and depth == 0:
            parts.append(kind[start:i])
            start = i + 1
    return [*parts, kind[start:]]


class Catalogue:
    """Validation and the canonical encoding, read from the schema alone."""

    def __init__(self, schema: dict = SCHEMA):
        self.schema = schema
        self.messages, self.records = schema["messages"], schema["records"]
        self.frames: list[bytes] = []

    def validate(self, msg: Any, nframes: int, *, receiver: str | None = None,
                 sender: str | None = None, agreed: frozenset[str] | None = None,
                 frames: list[bytes] = ()) -> dict:
        """``msg`` with defaults filled in and unknown fields dropped, or ``SpecError``;
        ``frames``, when given, are the batch's (to check compressed ones)."""
        self.frames = frames
        if not isinstance(msg, dict) or not all(isinstance(k, str) for k in msg):
            raise SpecError("invalid-message", f"not a map with string keys: {msg!r}")
        op = msg.get("op")
        if op not in self.messages:
            raise SpecError("unknown-op", f"op {op!r}")
        entry = self.messages[op]
        if sender and receiver:
            allowed = {f"{sender}->{receiver}", "any->any"}
            if not allowed & set(entry["direction"]):
                raise SpecError("invalid-message", f"{op} does not go {sender}->{receiver}")
        if agreed is not None and entry.get("feature") and entry["feature"] not in agreed:
            raise SpecError("invalid-message", f"{op} needs feature {entry['feature']}")
        return {**self._fields(msg, entry["fields"], nframes, op, agreed), "op": op}

    def _fields(self, value: dict, fields: dict, nframes: int, where: str,
                agreed: frozenset[str] | None) -> dict:
        out = {}
        for name, info in fields.items():
            item = value.get(name)
            if item is None:
                if info["required"]:
                    raise SpecError("invalid-message", f"{where}.{name} is required")
                if "default" in info:
                    out[name] = info["default"]
                continue
            self._check(item, info["type"], info, nframes, f"{where}.{name}", agreed)
            if (agreed is not None and info.get("feature") and info["feature"] not in agreed
                    and item != info.get("default")):
                raise SpecError("invalid-message", f"{where}.{name} needs {info['feature']}")
            out[name] = self._normal(item, info["type"])
        return out

    def _check(self, value: Any, kind: str, info: dict, nframes: int, where: str,
               agreed: frozenset[str] | None) -> None:
        errors = []
        for alternative in split_alternatives(kind):
            try:
                self._check_one(value, alternative, info, nframes, where, agreed)
                return
            except SpecError as exc:
                if exc.code == "invalid-payload":
                    raise
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else SpecError(
            "invalid-message", f"{where}: {value!r} is not {kind}")

    def _check_one(self, value: Any, kind: str, info: dict, nframes: int, where: str,
                   agreed: frozenset[str] | None) -> None:
        def wrong() -> SpecError:
            return SpecError("invalid-message", f"{where}: {value!r} is not {kind}")
        if kind.startswith("list<"):
            if not isinstance(value, list):
                raise wrong()
            for i, item in enumerate(value):
                self._check(item, kind[5:-1], info, nframes, f"{where}[{i}]", agreed)
        elif kind.startswith("map<"):
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise wrong()
            for key, item in value.items():
                self._check(item, kind[4:-1], info, nframes, f"{where}[{key!r}]", agreed)
        elif kind in self.records:
            if not isinstance(value, dict):
                raise wrong()
            self._fields(value, self.records[kind], nframes, where, agreed)
        elif kind == "payload":
            self._check_payload(value, nframes, where)
        else:
            ok = {"str": lambda v: isinstance(v, str),
                  "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                  "bool": lambda v: isinstance(v, bool),
                  "bin": lambda v: isinstance(v, bytes),
                  "any": lambda v: True}[kind]
            if not ok(value):
                raise wrong()
            # ``values`` and ``length`` are not decoding rules (PROTOCOL.md, Message encoding):
            # the handshake checks them where it uses them.
            if "minimum" in info and kind in ("int", "float"):
                if isinstance(value, float) and not math.isfinite(value):
                    raise SpecError("invalid-message", f"{where}: {value} is not finite")
                if value < info["minimum"]:
                    raise SpecError("invalid-message", f"{where}: {value} < {info['minimum']}")

    def _check_payload(self, value: Any, nframes: int, where: str) -> None:
        if (not isinstance(value, dict) or not isinstance(value.get("serializer"), str)
                or not isinstance(value.get("frames"), list) or not value["frames"]
                or not all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i < nframes
                           for i in value["frames"])):
            raise SpecError("invalid-message", f"{where}: not a payload of this batch: {value!r}")
        serializer = self.schema["serializers"].get(value["serializer"])
        if serializer is None:
            raise SpecError("invalid-message", f"{where}: serializer {value['serializer']!r}")
        count = len(value["frames"])
        if count < serializer["minFrames"] or (serializer["maxFrames"] is not None
                                               and count > serializer["maxFrames"]):
            raise SpecError("invalid-payload", f"{where}: {count} frames for "
                                               f"{value['serializer']}")
        codecs = value.get("compression")  # PROTOCOL.md, Payloads (features compression*)
        if codecs is not None:
            if (not isinstance(codecs, list) or len(codecs) != count
                    or not all(c in (None, "lz4", "zstd") for c in codecs)):
                raise SpecError("invalid-message", f"{where}: compression {codecs!r}")
            for index, codec in zip(value["frames"], codecs):
                frame = self.frames[index] if index < len(self.frames) else None
                if frame is None or codec is None:
                    continue
                if codec == "lz4":
                    stated = struct.unpack_from("<I", frame)[0] if len(frame) >= 4 else None
                    bound = 256 * len(frame)
                else:
                    stated, bound = zstd_content_size(frame), ZSTD_MOST
                if stated is None or stated > bound:
                    raise SpecError("invalid-message", f"{where}: frame {index} states "
                                                       f"{stated} bytes")

    def _normal(self, value: Any, kind: str) -> Any:
        """A value as the canonical encoding writes it: floats as floats, records in order."""
        if kind == "float" and isinstance(value, int):
            return float(value)
        if kind.startswith("list<") and isinstance(value, list):
            return [self._normal(v, kind[5:-1]) for v in value]
        if kind.startswith("map<") and isinstance(value, dict):
            return {k: self._normal(v, kind[4:-1]) for k, v in value.items()}
        if kind in self.records and isinstance(value, dict):
            return self._fields(value, self.records[kind], 2**63, kind, None)
        if "|" in kind:
            for alternative in split_alternatives(kind):
                if alternative == "str" and isinstance(value, str):
                    return value
                if alternative == "payload" and isinstance(value, dict):
                    return value
        return value

    def encode(self, messages: list[dict], nframes: int) -> bytes:
        """Frame 0 in the canonical encoding (PROTOCOL.md, Canonical encoding)."""
        canonical = [self.validate(m, nframes) for m in messages]
        return msgpack.packb(canonical, use_bin_type=True, use_single_float=False)


CATALOGUE = Catalogue()


# -- the handshake (PROTOCOL.md, Handshake) --------------------------------------------------
def proof(token: str, label: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(token.encode(), label + first + second, hashlib.sha256).digest()


class Initiator:
    """The initiator's side of the handshake table: messages in, messages out."""

    def __init__(self, role: str, token: str | None, *, name: str | None = None,
                 versions: tuple[int, int] = (1, 1), nonce: bytes | None = None,
                 features: list[str] = ()):
        self.role, self.token, self.versions = role, token, versions
        self.nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        self.name, self.features = name, sorted(features)
        self.state, self.version, self.agreed = "start", None, frozenset()

    def start(self) -> dict:
        self.state = "sent-hello"
        hello = {"op": "hello", "min_version": self.versions[0],
                 "max_version": self.versions[1], "role": self.role, "nonce": self.nonce}
        if self.name is not None:
            hello["name"] = self.name
        if self.features:
            hello["features"] = self.features
        return hello

    def receive(self, msg: dict) -> list[dict]:
        if msg["op"] == "error":
            raise SpecError(msg["code"], msg["message"], by_peer=True)
        if (self.state, msg["op"]) == ("sent-hello", "welcome"):
            return self._welcome(msg)
        if (self.state, msg["op"]) == ("sent-proof", "authenticated"):
            self.state = "done"
            return []
        raise SpecError("handshake-failed", f"{msg['op']} in state {self.state}")

    def _welcome(self, msg: dict) -> list[dict]:
        if not self.versions[0] <= msg["version"] <= self.versions[1]:
            raise SpecError("version-mismatch", f"version {msg['version']} chosen")
        self.version = msg["version"]
        self.agreed = frozenset(self.features) & frozenset(msg.get("features") or ())
        if not msg["auth"]:
            if self.token:
                raise SpecError("auth-failed", "the acceptor does not authenticate")
            self.state = "done"
            return []
        if not self.token:
            raise SpecError("auth-failed", "the acceptor wants a token")
        nonce, their_proof = msg.get("nonce"), msg.get("proof")
        if nonce is None or len(nonce) != NONCE_BYTES or their_proof is None:
            raise SpecError("auth-failed", "welcome lacks a 32-byte nonce or its proof")
        if not hmac.compare_digest(proof(self.token, b"dist acceptor", self.nonce, nonce),
                                   their_proof):
            raise SpecError("auth-failed", "the acceptor's proof does not match")
        self.state = "sent-proof"
        return [{"op": "authenticate",
                 "proof": proof(self.token, b"dist initiator", nonce, self.nonce)}]


def worker_map_table(protocol: str) -> dict[str, tuple[str, bool, bool, bool]]:
    """PROTOCOL.md, Worker maps: key -> (type, may be nil, carried by worker-list and
    worker-added too, absent from older centers)."""
    section = protocol.split("\n### Worker maps\n", 1)[1]
    rows: dict[str, tuple[str, bool, bool, bool]] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            key, kind, events, meaning = (cell.strip() for cell in line.strip("|").split("|"))
            nullable = kind.endswith(" or nil")
            rows[key.strip("`")] = (kind.removesuffix(" or nil").strip("`"), nullable,
                                    events == "yes", "*newer*" in meaning)
        elif rows and not line.startswith("|"):
            return rows
    return rows


WORKER_MAP = worker_map_table((SPEC / "PROTOCOL.md").read_text())


def check_worker_map(worker: Any, *, events: bool) -> dict:
    """A worker's map as ``cluster-info-reply`` (or, ``events``, ``worker-list`` and
    ``worker-added``) carries it, checked against PROTOCOL.md, Worker maps."""
    if not isinstance(worker, dict):
        raise SpecError("invalid-message", f"a worker map: {worker!r}")
    for key, (kind, nullable, in_events, newer) in WORKER_MAP.items():
        if events and not in_events:
            continue
        if key not in worker:
            if newer:
                continue
            raise SpecError("invalid-message", f"a worker map without {key}: {worker!r}")
        if worker[key] is None and nullable:
            continue
        CATALOGUE._check(worker[key], kind, {}, 0, f"worker[{key!r}]", None)
    return worker


def check_worker_maps(msg: dict) -> None:
    """The worker maps inside a message, each as PROTOCOL.md, Worker maps, says."""
    if msg["op"] == "cluster-info-reply":
        for worker in msg["workers"]:
            check_worker_map(worker, events=False)
    elif msg["op"] == "worker-list":
        for worker in msg["workers"]:
            check_worker_map(worker, events=True)
    elif msg["op"] == "worker-added":
        check_worker_map(msg["worker"], events=True)


# -- one connection --------------------------------------------------------------------------
class Link:
    """A socket that completed the handshake; strict about everything it receives."""

    def __init__(self, address: str, token: str | None, *, peer: str, role: str = "client",
                 features: list[str] = (), timeout: float = 30,
                 tls: ssl.SSLContext | None = None, **handshake: Any):
        scheme, _, rest = address.rpartition("://")
        host, port = rest.rsplit(":", 1)
        host = host.removeprefix("[").removesuffix("]")  # an IPv6 host is in brackets
        self.peer, self.role = peer, role
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in KEEPALIVE:
            if hasattr(socket, name):
                self.sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        if scheme == "tls":
            if tls is None:
                raise ValueError(f"{address} is a TLS address: give a TLS context")
            self.sock = tls.wrap_socket(self.sock)
        self.reader = BatchReader()
        self.batches: list[list[bytes]] = []
        self.handshake = Initiator(role, token, features=features, **handshake)
        self.send_raw([CATALOGUE.encode([self.handshake.start()], 1)])
        # One batch at a time: the batch that completes the handshake raises the limits for
        # the next, which may come in the same read (a center's worker-list, say).
        while self.handshake.state != "done":
            frames = self.reader.next_batch()
            if frames is None:
                self.reader.buffer += self._received()
                continue
            for msg in self._decode(frames, handshake=True):
                if self.handshake.state == "done":
                    raise SpecError("handshake-failed",
                                    "the acceptor sent more behind its last step, in its batch")
                replies = self.handshake.receive(msg)
                if replies:
                    self.send_raw([CATALOGUE.encode(replies, 1)])
        self.reader.limits = LIMITS_AFTER_HANDSHAKE
        self.batches.extend(self.reader.feed(b""))
        self.agreed = self.handshake.agreed

    def send_raw(self, frames: list[bytes]) -> None:
        self.sock.sendall(encode_batch(frames))

    def send(self, messages: list[dict], payloads: list[bytes] = ()) -> None:
        nframes = 1 + len(payloads)
        me = "client" if self.role == "client" else "worker"
        for msg in messages:  # what we may send: our direction, our agreed features
            CATALOGUE.validate(msg, nframes, sender=me, receiver=self.peer, agreed=self.agreed)
        self.send_raw([CATALOGUE.encode(messages, nframes), *payloads])

    def _received(self) -> bytes:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError(f"{self.peer} closed the connection")
        return data

    def _next_frames(self) -> list[bytes]:
        while not self.batches:
            self.batches.extend(self.reader.feed(self._received()))
        return self.batches.pop(0)

    def _decode(self, frames: list[bytes], handshake: bool = False) -> list[dict]:
        try:
            messages = msgpack.unpackb(frames[0], raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise SpecError("invalid-message", f"frame 0: {exc}") from None
        if not isinstance(messages, list):
            raise SpecError("invalid-message", "frame 0 is not an array")
        out = []
        for msg in messages:
            if isinstance(msg, dict) and msg.get("op") == "error":
                error = CATALOGUE.validate(msg, len(frames))
                raise SpecError(error["code"], error["message"], by_peer=True)
            if handshake:
                out.append(CATALOGUE.validate(msg, len(frames)))
            else:
                out.append(CATALOGUE.validate(msg, len(frames), sender=self.peer,
                                              receiver="client", agreed=self.agreed))
                check_worker_maps(out[-1])
        return out

    def receive(self) -> tuple[list[dict], list[bytes]]:
        frames = self._next_frames()
        return self._decode(frames), frames

    def close(self) -> None:
        self.sock.close()


def msgpack_payload(value: Any, index: int) -> tuple[dict, bytes]:
    return {"serializer": "msgpack", "frames": [index]}, pack_value(value)


def read_payload(payload: dict, frames: list[bytes]) -> Any:
    [index] = payload["frames"]
    if payload["serializer"] == "msgpack":
        return unpack_value(frames[index])
    if payload["serializer"] == "bytes":
        return frames[index]
    raise SpecError("invalid-payload", f"this client reads no {payload['serializer']}")


class TaskFailed(Exception):
    def __init__(self, outcome: dict):
        super().__init__(f"{outcome['op']} {outcome['key']}: {outcome.get('exception_type')}: "
                         f"{outcome.get('message')}")
        self.outcome = outcome


def task(key: str, function: str, *args: Any, deps: list[str] = (), **kwargs: Any) -> dict:
    """A TaskSpec with msgpack arguments; its payload frame is added by ``submit``."""
    return {"key": key, "function": function, "deps": list(deps), "_args": [list(args), kwargs]}


class SpecClient:
    """The minimal and data conformance levels (spec/README.md)."""

    SETTLED = ("key-in-memory", "task-erred", "key-lost", "key-cancelled")

    def __init__(self, address: str, token: str | None = None, features: list[str] = (),
                 tls: ssl.SSLContext | None = None, **handshake: Any):
        self.token, self.features, self.tls = token, list(features), tls
        self.center = Link(address, token, peer="center", features=features, tls=tls,
                           **handshake)
        self.outcomes: dict[str, dict] = {}
        self.others: list[dict] = []  # what arrived that no request asked for
        self.news: list[dict] = []  # every message about a key, in order (``next_news``)
        self.ids = iter(range(1, 2**31))

    def submit(self, tasks: list[dict], **fields: Any) -> list[str]:
        payloads, specs = [], []
        for spec in tasks:
            spec = dict(spec)
            arguments = spec.pop("_args", None)
            if arguments is not None:
                payloads.append(pack_value(arguments))
                spec["args"] = {"serializer": "msgpack", "frames": [len(payloads)]}
            specs.append(spec)
        self.center.send([{"op": "submit", "tasks": specs, **fields}], payloads)
        return [spec["key"] for spec in specs]

    def _take(self, messages: list[dict]) -> None:
        for msg in messages:
            if isinstance(msg.get("key"), str):
                self.news.append(msg)
            if msg["op"] in self.SETTLED:
                self.outcomes[msg["key"]] = msg
            else:
                self.others.append(msg)

    def wait(self, key: str) -> dict:
        while key not in self.outcomes:
            self._take(self.center.receive()[0])
        return self.outcomes[key]

    def next_news(self, key: str) -> dict:
        """The oldest message about ``key`` not taken yet, in the order they arrived (a key
        may settle more than once: a lost value computed again)."""
        while True:
            for i, msg in enumerate(self.news):
                if msg["key"] == key:
                    return self.news.pop(i)
            self._take(self.center.receive()[0])

    def request(self, msg: dict, payloads: list[bytes] = ()) -> tuple[dict, list[bytes]]:
        msg = {**msg, "id": next(self.ids)}
        self.center.send([msg], payloads)
        reply, frames = self.reply_to(msg["id"])
        if reply["op"] not in SCHEMA["messages"][msg["op"]]["replies"]:
            raise SpecError("protocol-error", f"{msg['op']} answered by {reply['op']}")
        return reply, frames

    def reply_to(self, request_id: int) -> tuple[dict, list[bytes]]:
        """The reply with this id (and its batch's frames); what arrives before it is kept."""
        while True:
            messages, frames = self.center.receive()
            for reply in messages:
                if reply.get("id") == request_id:
                    self._take([m for m in messages if m is not reply])
                    return reply, frames
            self._take(messages)

    def who_has(self, keys: list[str]) -> dict[str, list[str]]:
        return self.request({"op": "who-has", "keys": keys})[0]["who_has"]

    def worker(self, address: str) -> Link:
        # A worker's address says its transport; over TLS, our certificates are the same.
        return Link(address, self.token, peer="worker", features=self.features, tls=self.tls)

    def get_data(self, address: str, keys: list[str],
                 serializers: list[str] = ("msgpack",)) -> tuple[dict, list[bytes]]:
        link = self.worker(address)
        try:
            link.send([{"op": "get-data", "id": 1, "keys": keys,
                        "serializers": list(serializers)}])
            [reply], frames = link.receive()
            assert reply["op"] == "data" and reply["id"] == 1, reply
            return reply, frames
        finally:
            link.close()

    def gather(self, keys: list[str]) -> dict[str, Any]:
        for key in keys:
            if self.wait(key)["op"] != "key-in-memory":
                raise TaskFailed(self.outcomes[key])
        by_worker: dict[str, list[str]] = {}
        for key, holders in self.who_has(keys).items():
            by_worker.setdefault(holders[0], []).append(key)
        values = {}
        for address, held in by_worker.items():
            reply, frames = self.get_data(address, held)
            if reply["missing"] or reply["errors"]:
                raise SpecError("protocol-error", f"missing {reply['missing']}, errors "
                                                  f"{reply['errors']}")
            values.update({k: read_payload(p, frames) for k, p in reply["data"].items()})
        return values

    def scatter(self, data: dict[str, Any], serializer: str = "msgpack",
                **plan_fields: Any) -> dict[str, list[str]]:
        packed = {k: pack_value(v) if serializer == "msgpack" else v for k, v in data.items()}
        plan, _ = self.request({"op": "scatter-plan",
                                "keys": {k: len(v) for k, v in packed.items()}, **plan_fields})
        by_worker: dict[str, list[str]] = {}
        for key, targets in plan["targets"].items():
            for address in targets:
                by_worker.setdefault(address, []).append(key)
        stored: dict[str, list[str]] = {}
        for address, keys in by_worker.items():
            link = self.worker(address)
            try:
                link.send([{"op": "put-data", "id": 1, "data": {
                    key: {"serializer": serializer, "frames": [i]}
                    for i, key in enumerate(keys, 1)}}], [packed[key] for key in keys])
                [reply], _ = link.receive()
                assert reply["op"] == "data-stored" and sorted(reply["keys"]) == sorted(keys)
            finally:
                link.close()
            for key in keys:
                stored.setdefault(key, []).append(address)
        if "scatter-done" in self.center.agreed:
            self.center.send([{"op": "scatter-done", "who_has": stored,
                               "nbytes": {k: len(packed[k]) for k in stored}}])
        return stored

    def release(self, keys: list[str]) -> None:
        self.center.send([{"op": "release", "keys": keys}])
        for key in keys:
            self.outcomes.pop(key, None)

    def close(self) -> None:
        self.center.close()
