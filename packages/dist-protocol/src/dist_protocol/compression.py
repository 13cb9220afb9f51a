"""Compressing payload frames on the wire (the ``compression`` protocol feature). No I/O.

Between hosts, a large frame that compresses well travels lz4-compressed (the block format,
with its 4-byte little-endian original size in front). Whether a frame compresses well is
decided from a sample from its middle, so incompressible data (random floats, images, already
compressed files) costs one small trial. A compressed payload says so in its wire map:
``"compression": ["lz4", null, ...]``, one entry per frame; the receiver decompresses while
decoding, so every payload handed on is plain again. Only peers that both announced the feature
send it, never on loopback (copying through a compressor costs more than the bytes saved).
"""
from __future__ import annotations

import struct
from typing import Any

from .errors import InvalidMessage
from .serialize import Payload

try:
    import lz4.block as _lz4
except ImportError:  # lz4 is optional: without it the feature is not announced
    _lz4 = None

CODECS = ("lz4",)
MIN_SIZE = 64 * 1024  # smaller frames are not worth a trial
SAMPLE_SIZE = 10_000
MAX_SIZE = 2**31 - 2**26  # lz4's block format stops below 2 GiB
RATIO = 0.9  # compressed must be at most this share of the original to be sent compressed
# A declared original size above this many times the compressed one is refused (lz4 itself
# cannot do better than about 255:1), so a small frame cannot make us allocate gigabytes.
MAX_EXPANSION = 256
_SIZE = struct.Struct("<I")


def available() -> bool:
    return _lz4 is not None


def compress_frame(frame: Any) -> Any | None:
    """The lz4 block of ``frame`` (size in front) when that saves enough, else ``None``."""
    view = memoryview(frame).cast("B")
    n = view.nbytes
    if _lz4 is None or n < MIN_SIZE or n > MAX_SIZE:
        return None
    start = (n - SAMPLE_SIZE) // 2
    if len(_lz4.compress(view[start:start + SAMPLE_SIZE], store_size=False)) > \
            RATIO * SAMPLE_SIZE:
        return None
    packed = _lz4.compress(view, store_size=True)
    return packed if len(packed) <= RATIO * n else None


def compress_payload(payload: Payload) -> Payload:
    """``payload`` with its large, compressible frames compressed (itself when none is)."""
    if payload.compression is not None:
        return payload
    frames, codecs = [], []
    for frame in payload.frames:
        packed = compress_frame(frame)
        frames.append(frame if packed is None else packed)
        codecs.append(None if packed is None else "lz4")
    if not any(codecs):
        return payload
    compressed = Payload(payload.serializer, frames)
    compressed.compression = codecs
    return compressed


def decompress_frames(frames: list[Any], codecs: Any) -> list[Any]:
    """The frames of a payload received with ``"compression": codecs``, decompressed;
    ``InvalidMessage`` for anything malformed."""
    if type(codecs) is not list or len(codecs) != len(frames):
        raise InvalidMessage("payload 'compression' must list one codec (or nil) per frame")
    out = []
    for frame, codec in zip(frames, codecs):
        if codec is None:
            out.append(frame)
            continue
        if codec not in CODECS:
            raise InvalidMessage(f"unknown payload compression {codec!r}")
        if _lz4 is None:
            raise InvalidMessage("an lz4-compressed frame, but lz4 is not installed here")
        view = memoryview(frame).cast("B")
        if view.nbytes < _SIZE.size:
            raise InvalidMessage("a compressed frame shorter than its size header")
        (size,) = _SIZE.unpack_from(view)
        if size > MAX_EXPANSION * view.nbytes:
            raise InvalidMessage(f"a compressed frame of {view.nbytes} bytes claims {size}")
        try:
            out.append(_lz4.decompress(view, return_bytearray=True))
        except Exception as exc:  # noqa: BLE001 -- lz4.block.LZ4BlockError and friends
            raise InvalidMessage(f"a compressed frame does not decompress: {exc}") from None
    return out
