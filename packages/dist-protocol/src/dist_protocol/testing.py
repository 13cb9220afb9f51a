"""Helpers for testing code that speaks the protocol, shipped with it (as ``trio.testing`` is).

* The spec's test vectors: ``spec_dir()``, ``load_vectors(name)`` and the JSON tagging of
  binary values (``to_json``/``from_json``). A missing vector file raises: a conformance suite
  that silently skips is no suite.
* ``example_message(cls, full=...)``: a valid instance of any message class, built from its
  annotations, so that a new op gets vectors and round-trip tests without hand work.
* ``decode_three_ways``/``rejected_three_ways``: run the frame decoder whole, byte by byte and
  with trailing bytes, and check the three agree.
* ``comm_pair()``: two connected ``Comm``s over an in-memory transport, after a real
  handshake, for testing servers without sockets.

Hypothesis strategies for wire values and messages are in ``dist_protocol.strategies``.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import os
import struct
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import msgpack

from .comm import HANDSHAKE_TIMEOUT, Comm, StreamProtocol, run_handshake
from .connection import Connection
from .features import FEATURES
from .framing import DEFAULT_LIMITS, FrameDecoder, Limits
from .handshake import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, AcceptorHandshake, InitiatorHandshake
from .errors import HandshakeError, ProtocolError
from .messages import Environment, Message, decode_batch, encode_batch
from .serialize import Payload, msgpack_dumps

SPEC_DIR_ENV = "DIST_SPEC_DIR"
REGENERATE_HINT = "run `python spec/tools/generate.py` from the repository root"

# -- the spec folder and its vectors ----------------------------------------------------------


def spec_dir() -> Path:
    """The repository's ``spec/`` folder: ``$DIST_SPEC_DIR``, else found above this package
    (an editable install) or above the working directory (an installed package run from a
    checkout). Raises ``FileNotFoundError``: the vectors are part of the test suite."""
    explicit = os.environ.get(SPEC_DIR_ENV)
    if explicit:
        path = Path(explicit)
        if not (path / "vectors").is_dir():
            raise FileNotFoundError(f"{SPEC_DIR_ENV}={explicit} has no vectors/ folder")
        return path
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            candidate = folder / "spec"
            if (candidate / "vectors").is_dir() and (candidate / "PROTOCOL.md").is_file():
                return candidate
    raise FileNotFoundError("cannot find the spec/ folder (with vectors/ and PROTOCOL.md) above "
                            f"{Path(__file__).parent} or {Path.cwd()}; set {SPEC_DIR_ENV}")


def load_vectors(name: str) -> dict[Any, Any]:
    """``spec/vectors/<name>.json`` as data. Raises when the file is missing."""
    path = spec_dir() / "vectors" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"spec vector file {path} is missing; {REGENERATE_HINT}")
    vectors: dict[Any, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vectors


def to_json(value: Any) -> Any:
    """A msgpack value as JSON: bytes become ``{"$bin": hex}``, extension types
    ``{"$ext": [type, hex]}``, floats ``{"$float": number}`` (``"nan"``, ``"inf"``, ``"-inf"``
    for those), so that a JSON reader that has one number type still tells ``30.0`` from
    ``30``; everything else maps one to one."""
    if isinstance(value, float):
        return {"$float": value if math.isfinite(value) else str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(value).hex()}
    if isinstance(value, msgpack.ExtType):
        return {"$ext": [value.code, value.data.hex()]}
    if isinstance(value, dict):
        return {_json_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def frame_to_json(frame: bytes) -> Any:
    """``to_json`` of a msgpack frame whose extension values may be of any type: each, a
    timestamp (type -1, which msgpack reads as its own ``Timestamp``) and the negative types
    ``msgpack.ExtType`` cannot hold included, tagged ``{"$ext": [type, hex]}``."""
    def tagged(value: Any) -> Any:
        if isinstance(value, msgpack.Timestamp):
            return {"$ext": [-1, value.to_bytes().hex()]}
        if isinstance(value, list):
            return [tagged(v) for v in value]
        if isinstance(value, dict):
            return {k: tagged(v) for k, v in value.items()}
        return value
    return to_json(tagged(msgpack.unpackb(frame, raw=False, strict_map_key=False,
                                          ext_hook=lambda code, data: {"$ext": [code,
                                                                                data.hex()]})))


def from_json(value: Any) -> Any:
    """The inverse of ``to_json``."""
    if isinstance(value, dict):
        if len(value) == 1 and "$bin" in value:
            return bytes.fromhex(value["$bin"])
        if len(value) == 1 and "$float" in value:
            return float(value["$float"])
        if len(value) == 1 and "$ext" in value:
            code, data = value["$ext"]
            return msgpack.ExtType(code, bytes.fromhex(data))
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def _json_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"JSON vectors need string map keys, got {key!r}")
    return key


# -- parsing three ways ---------------------------------------------------------------------------

# The start of another batch's header: buffered, never completed.
TRAILING = struct.pack("<Q", 2)[:5]


def decode_in_chunks(data: bytes, limits: Limits = DEFAULT_LIMITS,
                     chunk: int = 1) -> tuple[list[Any], FrameDecoder]:
    """Feed ``data`` to a new decoder ``chunk`` bytes at a time: (batches, the decoder)."""
    decoder = FrameDecoder(limits)
    batches = []
    for i in range(0, len(data), chunk):
        batches.extend(decoder.feed(data[i:i + chunk]))
    return batches, decoder


def decode_three_ways(data: bytes, limits: Limits = DEFAULT_LIMITS,
                      small_chunk: int = 1) -> list[list[bytes]]:
    """The batches in ``data``, checked to be the same fed whole, in ``small_chunk`` pieces
    (one byte by default) and followed by the start of another batch (as h11's tests do)."""
    whole, decoder = decode_in_chunks(data, limits, max(len(data), 1))
    assert decoder.idle, "a whole batch left bytes behind"
    pieces, decoder = decode_in_chunks(data, limits, small_chunk)
    assert decoder.idle, "a batch fed in pieces left bytes behind"
    trailing, decoder = decode_in_chunks(data + TRAILING, limits, len(data) + len(TRAILING))
    assert not decoder.idle, "trailing bytes were lost"
    as_bytes = [[bytes(f) for f in batch] for batch in whole]
    assert [[bytes(f) for f in batch] for batch in pieces] == as_bytes, "pieces differ"
    assert [[bytes(f) for f in batch] for batch in trailing] == as_bytes, "trailing differs"
    return as_bytes


def rejected_three_ways(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ProtocolError:
    """The ``ProtocolError`` that ``data`` raises: the same type and code whichever way it is
    fed. Anything else escaping the decoder propagates (it is a bug)."""
    errors: list[ProtocolError] = []
    for chunk, tail in ((max(len(data), 1), b""), (1, b""), (len(data) + 8, TRAILING)):
        try:
            decode_in_chunks(data + tail, limits, chunk)
        except ProtocolError as exc:
            errors.append(exc)
        else:
            raise AssertionError(f"{data[:40].hex()}... was accepted (chunks of {chunk})")
    assert len({(type(e), e.code) for e in errors}) == 1, errors
    return errors[0]


# -- fuzz targets ----------------------------------------------------------------------------------


def connection_pair(limits: Limits = DEFAULT_LIMITS, token: str | None = None,
                    who: str | None = None, role: str = "client") -> tuple[Connection, Connection]:
    """``(initiator, acceptor)``: two ``Connection``s after a real handshake in memory, the
    bytes passed between them by hand (no I/O)."""
    initiator = Connection(InitiatorHandshake(role, token=token, features=FEATURES),
                           limits=limits)
    acceptor = Connection(AcceptorHandshake(token=token, features=FEATURES), who=who,
                          limits=limits)
    while not (initiator.established and acceptor.established):
        moved = False
        for sender, receiver in ((initiator, acceptor), (acceptor, initiator)):
            for buf in sender.data_to_send():
                moved = True
                if receiver.receive_data(buf):
                    raise AssertionError("the handshake delivered messages")
        if not moved:
            raise AssertionError("the handshake stalled")
    return initiator, acceptor


def decode_untrusted(data: bytes, limits: Limits = DEFAULT_LIMITS,
                     chunk: int | None = None) -> list[Message] | ProtocolError:
    """What a receiver makes of ``data`` after the handshake (arriving ``chunk`` bytes at a
    time): the validated messages, or the ``ProtocolError`` that would close the connection --
    the first violation in the stream. It is the ``Connection`` the comm runs, not a copy of
    its loop; any other exception is a bug."""
    _, acceptor = connection_pair(limits)
    view = memoryview(data)
    step = chunk or len(data) or 1
    messages: list[Message] = []
    try:
        for i in range(0, len(data), step):
            messages.extend(acceptor.receive_data(view[i:i + step]))
    except ProtocolError as exc:
        return exc
    return messages


# The properties the unit tests and the long fuzz run (fuzz/fuzz_decoder.py) both check, each
# for one generated input.

def check_message_maps(frames: list[Any]) -> None:
    """Message-like maps are validated or refused with a validation code; what validation
    accepts, a sender re-encodes to the same messages."""
    try:
        messages = decode_batch(frames)
    except ProtocolError as exc:
        assert exc.code in ("invalid-message", "unknown-op", "invalid-payload"), exc.code
        return
    check_round_trip(messages)


def check_round_trip(messages: list[Message]) -> None:
    assert decode_batch(encode_batch(messages)) == messages


def check_handshakes(inputs: list[Message], token: str | None) -> None:
    """Both sides of the handshake meet any sequence of messages with handshake errors only."""
    for side in (AcceptorHandshake(token=token), InitiatorHandshake("client", token=token)):
        if isinstance(side, InitiatorHandshake):
            side.start()
        try:
            for msg in inputs:
                side.receive(msg)
        except HandshakeError:
            pass


# -- example messages ---------------------------------------------------------------------------


def example_message(cls: type[Message], full: bool) -> Message:
    """A valid instance of ``cls``: only the required fields, or every field set to a value
    other than its default (``full=True``)."""
    example: Message = _example_record(cls, full)
    return example


def _example_record(cls: type, full: bool) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required or full:
            kwargs[f.name] = _example_value(hints[f.name], f.name, full)
    return cls(**kwargs)


def _example_value(tp: Any, name: str, full: bool) -> Any:
    if tp is Any:
        return {name: 1}
    if tp is Payload:
        return Payload("msgpack", [msgpack_dumps([[1, 2], {}])])
    if tp is str:
        return f"{name}-1"
    if tp is bool:
        return True
    if tp is int:
        return 3
    if tp is float:
        return 2.5
    if tp is bytes:
        return bytes(range(8))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return [_example_value(args[0], name, full)]
    if origin is dict:
        return {f"{name}-a": _example_value(args[1], name, full)}
    if origin in (Union, types.UnionType):
        return _example_value(next(a for a in args if a is not type(None)), name, full)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _example_record(tp, full)
    raise TypeError(f"no example for {tp!r}")


# -- an in-memory connection pair ---------------------------------------------------------------


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory byte pipe with the asyncio transport interface.

    Bytes written are delivered to the peer's protocol on a later loop iteration, in pieces
    of ``chunk_size`` bytes when given (1 exercises every partial read of the decoder).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BufferedProtocol,
                 name: str, chunk_size: int | None = None):
        super().__init__(extra={"peername": (name, 0), "sockname": (name, 0)})
        self._loop, self._protocol, self._chunk_size = loop, protocol, chunk_size
        self._peer: MemoryTransport | None = None
        self._closing = False
        self._lost = False
        self._paused = False
        self._held: collections.deque[memoryview] = collections.deque()  # arrived, not read

    def connect(self, peer: MemoryTransport) -> None:
        self._peer, peer._peer = peer, self

    def write(self, data: Any) -> None:
        if self._closing or self._peer is None:
            return
        self._loop.call_soon(self._peer._receive, bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _receive(self, data: bytes) -> None:
        if data:
            self._held.append(memoryview(data))
            self._deliver_held()

    def _deliver_held(self) -> None:
        """What arrived, to the protocol, in order, while reading is not paused."""
        while self._held and not self._paused and not self._lost:
            view = self._held[0]
            step = self._chunk_size or view.nbytes or 1
            target = memoryview(self._protocol.get_buffer(view.nbytes))
            n = min(target.nbytes, view.nbytes, step)
            target[:n] = view[:n]
            if n == view.nbytes:
                self._held.popleft()
            else:
                self._held[0] = view[n:]
            self._protocol.buffer_updated(n)

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._loop.call_soon(self._deliver_held)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        # After the bytes already written: the peer sees end of file, we see the loss.
        if self._peer is not None:
            self._loop.call_soon(self._peer._peer_closed)
        self._loop.call_soon(self._connection_lost)

    abort = close

    def _peer_closed(self) -> None:
        if not self._lost and not self._protocol.eof_received():
            self.close()

    def _connection_lost(self) -> None:
        if not self._lost:
            self._lost = True
            self._protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


async def comm_pair(*, role: str = "client", name: str | None = None,
                    token: str | None = None, initiator_token: str | None = None,
                    acceptor_token: str | None = None,
                    initiator_versions: tuple[int, int] = (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
                    acceptor_versions: tuple[int, int] = (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
                    limits: Limits = DEFAULT_LIMITS, chunk_size: int | None = None,
                    timeout: float = HANDSHAKE_TIMEOUT,
                    initiator_features: Iterable[str] = FEATURES,
                    acceptor_features: Iterable[str] = FEATURES,
                    initiator_environment: Environment | None = None,
                    acceptor_environment: Environment | None = None) -> tuple[Comm, Comm]:
    """``(initiator, acceptor)``: two ``Comm``s joined in memory after the real handshake.

    ``token`` is both sides' token unless ``initiator_token``/``acceptor_token`` differ. Each
    side announces every known protocol feature unless ``*_features`` says otherwise, and the
``*_environment`` given (by default none).
    A failed handshake raises the ``ProtocolError`` of the side that detected it.
    """
    loop = asyncio.get_running_loop()
    opening = InitiatorHandshake(role, token=initiator_token or token, name=name,
                                 versions=initiator_versions, features=initiator_features,
                                 environment=initiator_environment)
    accepting = AcceptorHandshake(token=acceptor_token or token, versions=acceptor_versions,
                                  features=acceptor_features, environment=acceptor_environment)
    initiator = Comm(loop, Connection(opening, limits=limits))
    acceptor = Comm(loop, Connection(accepting, limits=limits))
    initiator_protocol, acceptor_protocol = StreamProtocol(initiator), StreamProtocol(acceptor)
    initiator_end = MemoryTransport(loop, initiator_protocol, "initiator", chunk_size)
    acceptor_end = MemoryTransport(loop, acceptor_protocol, "acceptor", chunk_size)
    initiator_end.connect(acceptor_end)
    acceptor_protocol.connection_made(acceptor_end)
    initiator_protocol.connection_made(initiator_end)
    outcomes = await asyncio.gather(run_handshake(initiator, timeout),
                                    run_handshake(acceptor, timeout), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        initiator.close()
        acceptor.close()
        # The side that found the fault raised a ProtocolError; the other saw the close.
        raise next((f for f in failures if isinstance(f, ProtocolError)), failures[0])
    return initiator, acceptor


__all__ = ["MemoryTransport", "REGENERATE_HINT", "comm_pair", "connection_pair", "decode_in_chunks",
           "decode_three_ways", "decode_untrusted", "example_message", "frame_to_json", "from_json",
           "load_vectors",
           "rejected_three_ways", "spec_dir", "to_json"]
