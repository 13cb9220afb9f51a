"""Compressing payload frames on the wire (the ``compression`` and ``compression-zstd``
protocol features), and the codecs a worker's spill files use. No I/O.

Two codecs, each through its maintained binding:

* ``lz4`` (python-lz4; feature ``compression``): the block format with its 4-byte
  little-endian original size in front. Fast both ways (GB/s): the default between hosts.
* ``zstd`` (python-zstandard; feature ``compression-zstd``): one zstd frame (RFC 8878) that
  states its content size. Slower than lz4 but smaller, often by half again: worth it on a slow
  link, chosen with ``DIST_COMPRESSION=zstd``.

Whether a frame compresses well is decided from a sample from its middle, so incompressible
data (random floats, images, already compressed files) costs one small trial. A compressed
payload says so in its wire map: ``"compression": ["lz4", null, ...]``, one entry per frame;
the receiver decompresses while decoding, so every payload handed on is plain again. A sender
uses a codec only with a peer that announced its feature, and never on loopback (copying
through a compressor costs more than the bytes saved).
"""
from __future__ import annotations

import importlib
import mmap
import importlib.util
import os
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidMessage
from .framing import frame_buffer
from .serialize import Payload

# The module of each codec. Both are optional: without one, its feature is not announced.
# Each is imported when first used, not when a program starts (zstandard imports ``platform``;
# a process on loopback connections compresses nothing): whether one is installed is found
# without importing it.
MODULES = {"lz4": "lz4.block", "zstd": "zstandard"}
_loaded: dict[str, Any] = {}
_installed: dict[str, bool] = {}

CODECS = ("lz4", "zstd")
# The feature that says a peer decompresses each codec.
FEATURE_OF = {"lz4": "compression", "zstd": "compression-zstd"}
MIN_SIZE = 64 * 1024  # smaller frames are not worth a trial
SAMPLE_SIZE = 10_000
MAX_SIZE = 2**31 - 2**26  # lz4's block format stops below 2 GiB; zstd frames keep the same bound
RATIO = 0.9  # compressed must be at most this share of the original to be sent compressed
# A declared original size above this many times the compressed one is refused (lz4 itself
# cannot do better than about 255:1), so a small frame cannot make us allocate gigabytes.
MAX_EXPANSION = 256
ZSTD_LEVEL = 1  # zstd's fastest regular level: ~3x lz4's time for a clearly smaller result
_SIZE = struct.Struct("<I")

# Which codec a process sends with: ``auto`` (lz4 where the peer takes it, else zstd), ``lz4``,
# ``zstd`` (each falling back to the other where the peer lacks it), or ``none``.
COMPRESSION_ENV = "DIST_COMPRESSION"
CHOICES = ("auto", "lz4", "zstd", "none")


def available(codec: str = "lz4") -> bool:
    """Whether this process can compress and decompress ``codec``."""
    if codec in _loaded:
        return _loaded[codec] is not None
    installed = _installed.get(codec)
    if installed is None:
        package = MODULES[codec].split(".")[0] if codec in MODULES else None
        try:
            installed = package is not None and importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            installed = False
        _installed[codec] = installed
    return installed


def codec_module(codec: str) -> Any:
    """``codec``'s module (``lz4.block``, ``zstandard``), imported at its first use; None when
    it cannot be imported (then it is no longer ``available``)."""
    try:
        return _loaded[codec]
    except KeyError:
        pass
    module = None
    if codec in MODULES:
        try:
            module = importlib.import_module(MODULES[codec])
        except ImportError:  # found but not importable (a broken install): as if absent
            module = None
    _loaded[codec] = module
    return module


def preference(environ: Mapping[str, str] | None = None) -> str:
    """``DIST_COMPRESSION`` read and checked (``ValueError`` names the choices)."""
    env = os.environ if environ is None else environ
    value = env.get(COMPRESSION_ENV, "auto").strip().lower() or "auto"
    if value in ("off", "false", "no"):
        value = "none"
    if value not in CHOICES:
        raise ValueError(f"{COMPRESSION_ENV}={value!r}: choose one of {', '.join(CHOICES)}")
    return value


def choose(features: Iterable[str], wanted: str = "auto") -> str | None:
    """The codec to send with on a connection that agreed ``features`` (None: send plain)."""
    if wanted == "none":
        return None
    agreed = set(features)
    order = ("zstd", "lz4") if wanted == "zstd" else ("lz4", "zstd")
    for codec in order:
        if FEATURE_OF[codec] in agreed and available(codec):
            return codec
    return None


def _compress(view: memoryview, codec: str) -> Any:
    if codec == "lz4":
        return codec_module("lz4").compress(view, store_size=True)
    return codec_module("zstd").ZstdCompressor(level=ZSTD_LEVEL).compress(view)


def compress_frame(frame: Any, codec: str = "lz4") -> Any | None:
    """``frame`` compressed with ``codec`` when that saves enough, else ``None``."""
    view = memoryview(frame).cast("B")
    n = view.nbytes
    if n < MIN_SIZE or n > MAX_SIZE or not available(codec) or codec_module(codec) is None:
        return None
    start = (n - SAMPLE_SIZE) // 2
    if len(_compress(view[start:start + SAMPLE_SIZE], codec)) > RATIO * SAMPLE_SIZE:
        return None
    packed = _compress(view, codec)
    return packed if len(packed) <= RATIO * n else None


def compress_payload(payload: Payload, codec: str = "lz4") -> Payload:
    """``payload`` with its large, compressible frames compressed (itself when none is)."""
    if payload.compression is not None:
        return payload
    frames: list[Any] = []
    codecs: list[Any] = []
    for frame in payload.frames:
        packed = compress_frame(frame, codec)
        frames.append(frame if packed is None else packed)
        codecs.append(None if packed is None else codec)
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
        elif codec == "lz4":
            out.append(_decompress_lz4(frame))
        elif codec == "zstd":
            out.append(_decompress_zstd(frame))
        else:
            raise InvalidMessage(f"unknown payload compression {codec!r}")
    return out


def _decompress_lz4(frame: Any) -> bytearray:
    lz4 = codec_module("lz4")
    if lz4 is None:
        raise InvalidMessage("an lz4-compressed frame, but lz4 is not installed here")
    view = memoryview(frame).cast("B")
    if view.nbytes < _SIZE.size:
        raise InvalidMessage("a compressed frame shorter than its size header")
    (size,) = _SIZE.unpack_from(view)
    if size > MAX_EXPANSION * view.nbytes:
        raise InvalidMessage(f"a compressed frame of {view.nbytes} bytes claims {size}")
    try:
        plain: bytearray = lz4.decompress(view, return_bytearray=True)
        return plain
    except Exception as exc:  # noqa: BLE001 -- lz4.block.LZ4BlockError and friends
        raise InvalidMessage(f"a compressed frame does not decompress: {exc}") from None


def _decompress_zstd(frame: Any) -> bytearray | mmap.mmap:
    """One zstd frame into a new writable buffer of the size its header states."""
    zstd = codec_module("zstd")
    if zstd is None:
        raise InvalidMessage("a zstd-compressed frame, but zstandard is not installed here")
    view = memoryview(frame).cast("B")
    try:
        size = zstd.frame_content_size(view)
    except zstd.ZstdError as exc:
        raise InvalidMessage(f"a zstd frame without a valid header: {exc}") from None
    if size < 0:
        raise InvalidMessage("a zstd frame that does not state its content size")
    if size > MAX_SIZE:
        raise InvalidMessage(f"a zstd frame of {view.nbytes} bytes claims {size}")
    return zstd_decompress_into(view, size)


def zstd_decompress_into(view: memoryview, size: int) -> bytearray | mmap.mmap:
    """Decompress a zstd frame of ``size`` bytes into a writable buffer, with no second copy
    (numpy arrays unpickled from it stay writable); ``InvalidMessage`` when it does not."""
    zstd = codec_module("zstd")
    out = frame_buffer(size)
    target = memoryview(out)
    filled = 0
    try:
        with zstd.ZstdDecompressor().stream_reader(view, read_across_frames=False) as reader:
            while filled < size:
                got = reader.readinto(target[filled:])
                if not got:
                    break
                filled += got
            extra = reader.read(1)
    except zstd.ZstdError as exc:
        raise InvalidMessage(f"a compressed frame does not decompress: {exc}") from None
    if filled != size or extra:
        raise InvalidMessage(f"a zstd frame stating {size} bytes decompresses to another size")
    return out
