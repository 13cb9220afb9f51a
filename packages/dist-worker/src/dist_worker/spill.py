"""Values on disk: the slow half of the worker's data (``store.DataStore`` is the whole).

Each value is one file in the spill directory: a short header, then the frames of its pickle
(protocol 5), each out-of-band buffer written straight from the value's own memory, without
joining them into one bytes object first. Frames that compress well are compressed, with lz4
by default (fast both ways) or zstd (``--spill-compression zstd``: often half the size again,
for about three times the CPU; worth it where the disk is slow or small); whether one does is
decided from a sample, so incompressible data (random floats, already compressed bytes)
costs one small trial, not a full pass. Reading a value back reads each frame into a buffer
of its own, which the unpickled arrays then use (no copy per array, and aligned as the
allocator aligns memory, as they were before they spilled).

A value read back into memory keeps its file (``cached``): evicted again unchanged, it costs
no second write; the file goes when the key is freed. This mapping never decides what to
spill; it stores what it is given and says precisely why it could not.
"""
from __future__ import annotations

import errno
import hashlib
import io
import mmap
import os
import shutil
import struct
from collections.abc import Iterator, MutableMapping
from typing import Any

from dist_protocol.serialize import (Payload, SerializationError, deserialize,
                                     is_bytes_out_of_band, serialize)

# The codecs' modules are imported at the first frame compressed or read back (compression is
# worth having, not worth failing for: without a codec, frames are written as they are).
from dist_protocol.compression import available, codec_module, zstd_decompress_into
from dist_protocol.errors import InvalidMessage
from dist_protocol.framing import frame_buffer

from .file_mask import put_back_file_mask

MAGIC = b"DSPL1\n"
_HEAD = struct.Struct("<6sHI")  # magic, serializer length, number of frames
_FRAME = struct.Struct("<BQQ")  # codec (below), stored length, original length
SERIALIZERS = ("pickle", "bytes", "msgpack")
RAW, LZ4, ZSTD, LZ4_FRAME = 0, 1, 2, 3  # how a frame is stored
CODEC_IDS = {"lz4": LZ4, "zstd": ZSTD}
SPILL_CODECS = ("lz4", "zstd", "none")
ZSTD_LEVEL = 1

COMPRESS_MIN = 10_000  # frames smaller than this are written as they are
COMPRESS_SAMPLE = 10_000  # bytes tried first, from the middle of the frame
COMPRESS_MAX = 2**30  # lz4's block format stops below 2 GiB; larger frames go raw
COMPRESS_RATIO = 0.9  # compressed must be at most this share of the original to be kept
# A frame at least this large is compressed a step at a time as it is written (lz4 as an lz4
# frame of 1 MiB blocks, zstd as one zstd frame made in steps), and an lz4 one is read back
# likewise, into the frame's own buffer. Compressed in one go, the compressed copy stood
# beside the value while it was written (up to 90% of it), and lz4's one-block decompression
# returned a buffer of the whole frame for the value's buffer to be copied from: a large
# array in memory twice, for a moment, as it came back.
STREAM_FROM = 8 * 2**20
STEP = 4 * 2**20  # bytes compressed or read at a time in a streamed frame
# Bytes of an lz4 frame decompressed at a time, and its blocks: each step's output is a new
# buffer, copied into the frame's own, and the decompressor keeps a block of its own; 4 MiB
# of both left the process 20 MB above the frame as a 200 MB array came back, 1 MiB 7 MB.
DECOMPRESS_STEP = 2**20


class SpillSerializationError(Exception):
    """The value cannot be pickled, so it can only live in memory."""

    def __init__(self, key: str, cause: BaseException):
        super().__init__(f"{key}: {cause}")
        self.key = key
        self.cause = cause


class SpillReadError(OSError):
    """The spill file of ``key`` cannot be read back (removed, damaged, a failing disk): the
    value is lost here, and must come from another holder or be computed again."""

    def __init__(self, key: str, cause: OSError):
        super().__init__(cause.errno or errno.EIO, f"the spilled value of {key} cannot be "
                         f"read back: {cause.strerror or cause}")
        self.key = key


class SpillLoadError(Exception):
    """The spilled value of ``key`` was read back and does not unpickle (its class changed,
    or its ``__setstate__`` fails): any copy of these bytes would fail alike."""

    def __init__(self, key: str, cause: BaseException):
        super().__init__(f"the spilled value of {key} does not unpickle: "
                         f"{type(cause).__name__}: {cause}")
        self.key = key
        self.cause = cause


class ValueTooLarge(OSError):
    """The value does not fit on the spill disk however much is freed there."""

    def __init__(self, key: str, needed: int, available: int, directory: str):
        super().__init__(errno.ENOSPC, f"the value of {key} needs {needed} bytes on disk and "
                         f"only {available} are free in {directory}")
        self.key = key


def _pack(view: memoryview, codec: str) -> Any:
    if codec == "lz4":
        return codec_module("lz4").compress(view, store_size=False)
    return codec_module("zstd").ZstdCompressor(level=ZSTD_LEVEL).compress(view)


def compress(frame: Any, codec: str = "lz4") -> tuple[int, Any]:
    """``(codec id, compressed)`` when ``codec`` saves enough on this frame, else
    ``(RAW, frame)``; for a frame of ``STREAM_FROM`` bytes or more that the sample says is
    worth compressing, ``(codec id, Streamed(frame))``: compressed as it is written."""
    view = memoryview(frame).cast("B")
    n = view.nbytes
    if (codec not in CODEC_IDS or n < COMPRESS_MIN or n > COMPRESS_MAX or not available(codec)
            or codec_module(codec) is None):
        return RAW, frame
    if n > 4 * COMPRESS_SAMPLE:
        start = (n - COMPRESS_SAMPLE) // 2
        sample = view[start:start + COMPRESS_SAMPLE]
        if len(_pack(sample, codec)) > COMPRESS_RATIO * COMPRESS_SAMPLE:
            return RAW, frame
    if n >= STREAM_FROM:  # compressed as it is written (``_write_streamed``)
        return (LZ4_FRAME if codec == "lz4" else ZSTD), Streamed(view)
    packed = _pack(view, codec)
    if len(packed) > COMPRESS_RATIO * n:
        return RAW, frame
    return CODEC_IDS[codec], packed


class Streamed:
    """A frame to compress as it is written, ``STEP`` bytes at a time."""

    __slots__ = ("view",)

    def __init__(self, view: memoryview):
        self.view = view


class WriteAbandoned(Exception):
    """A write was abandoned while it ran (``PendingWrite.abandoned``)."""


class PendingWrite:
    """One value's spill file, prepared (``DiskMapping.prepare``) and not yet recorded.

    ``run`` writes it and may run on any thread: it touches only the file and the frames
    (which hold the value's own memory, unchanged while they are written). Setting
    ``abandoned`` stops a run between two steps."""

    __slots__ = ("key", "path", "serializer", "frames", "stored", "originals", "reserved",
                 "size", "abandoned")

    def __init__(self, key: str, path: str, serializer: bytes, frames: list[tuple[int, Any]],
                 stored: list[int], originals: list[int], reserved: int):
        self.key = key
        self.path = path
        self.serializer = serializer
        self.frames = frames
        self.stored = stored
        self.originals = originals
        self.reserved = reserved
        self.size = 0  # bytes in the file, once written
        self.abandoned = False

    def run(self) -> int:
        """Write the file; its size. Raises ``OSError`` (or ``WriteAbandoned``), leaving no
        file behind."""
        frames, stored = self.frames, self.stored
        self.check()  # (abandoned before it began: no file at all)
        try:
            with _create(self.path) as f:
                f.write(_head(self.serializer, frames, stored, self.originals))
                for i, (codec, data) in enumerate(frames):
                    if type(data) is Streamed:
                        stored[i] = _write_streamed(f, codec, data.view, self)
                    else:
                        self._write_raw(f, data)  # straight from the value: uncopied
                if any(type(data) is Streamed for _, data in frames):
                    f.seek(0)  # the stored sizes, now known
                    f.write(_head(self.serializer, frames, stored, self.originals))
        except BaseException:
            _remove(self.path)
            raise
        finally:
            self.frames = []  # (the value's memory is held no longer than the write)
        self.size = _HEAD.size + len(self.serializer) + _FRAME.size * len(frames) + sum(stored)
        return self.size

    def _write_raw(self, f: Any, data: Any) -> None:
        if type(data) is bytes and len(data) <= STEP:  # (most frames: one call)
            f.write(data)
            return
        view = memoryview(data).cast("B")
        for start in range(0, view.nbytes, STEP):
            self.check()
            f.write(view[start:start + STEP])

    def check(self) -> None:
        if self.abandoned:
            raise WriteAbandoned(self.key)


def _write_streamed(f: Any, codec: int, view: memoryview, pending: PendingWrite) -> int:
    """Write ``view`` compressed (``LZ4_FRAME`` or ``ZSTD``) a step at a time; the bytes
    written."""
    written = 0
    if codec == LZ4_FRAME:
        compressor: Any = _lz4_frame().LZ4FrameCompressor(
            block_size=_lz4_frame().BLOCKSIZE_MAX1MB)
        written += f.write(compressor.begin(view.nbytes))
    else:
        compressor = codec_module("zstd").ZstdCompressor(level=ZSTD_LEVEL).compressobj(
            size=view.nbytes)
    for start in range(0, view.nbytes, STEP):
        pending.check()
        written += f.write(compressor.compress(view[start:start + STEP]))
    written += f.write(compressor.flush())
    return written


def _lz4_frame() -> Any:
    """lz4's frame format (the spill's block format is ``lz4.block``, ``codec_module``)."""
    import lz4.frame

    return lz4.frame


def _read_lz4_frame(key: str, f: io.FileIO, stored: int, size: int) -> bytearray | mmap.mmap:
    """The next ``stored`` bytes of ``f``, an lz4 frame of ``size`` bytes, decompressed into a
    buffer of its own, a step at a time (neither side whole a second time)."""
    out = frame_buffer(size)
    target = memoryview(out)
    decompressor = _lz4_frame().LZ4FrameDecompressor()
    filled, left = 0, stored
    try:
        while not decompressor.eof:
            data: Any = b""
            if decompressor.needs_input:
                if not left:
                    break
                data = _read_exactly(key, f, min(STEP, left))
                left -= len(data)
            piece = decompressor.decompress(data, max_length=DECOMPRESS_STEP)
            if filled + len(piece) > size:
                break
            target[filled:filled + len(piece)] = piece
            filled += len(piece)
    except RuntimeError as exc:  # (what lz4.frame raises for data it cannot read)
        raise OSError(errno.EIO, f"the spill file of {key} is damaged: {exc}") from None
    if filled != size or left or not decompressor.eof:
        raise OSError(errno.EIO, f"the spill file of {key} is damaged")
    return out


def file_name(key: str) -> str:
    """Keys may hold any character; file names are their hash (collisions: astronomically
    unlikely, and a header check would not help a 128-bit one)."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class DiskMapping(MutableMapping):
    """key -> value, each value pickled into its own file under ``directory``."""

    def __init__(self, directory: str, max_bytes: int | None = None, codec: str = "lz4"):
        if codec not in SPILL_CODECS:
            raise ValueError(f"spill compression {codec!r}: choose one of "
                             f"{', '.join(SPILL_CODECS)}")
        self.codec = codec
        self.directory = directory
        self.max_bytes = max_bytes  # None: as much as the disk has
        self.sizes: dict[str, int] = {}  # key -> bytes on disk, spilled values
        self.cached: dict[str, int] = {}  # key -> bytes on disk, values also in memory
        self.bytes_written = 0
        self.bytes_read = 0
        self.reserved = 0  # bytes on disk of the writes prepared and not yet finished
        self._staged = 0  # (numbers the files of staged writes)
        self._made = False

    # -- what is on disk ------------------------------------------------------------------------
    @property
    def disk_bytes(self) -> int:
        return sum(self.sizes.values()) + sum(self.cached.values()) + self.reserved

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, file_name(key))

    def __contains__(self, key: object) -> bool:
        return key in self.sizes

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.sizes))

    def __len__(self) -> int:
        return len(self.sizes)

    # -- writing ------------------------------------------------------------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        cached = self.cached.pop(key, None)
        if cached is not None:  # read back earlier and not changed since: the file is there
            self.sizes[key] = cached
            return
        try:
            payload = serialize(value)
        except SerializationError as exc:
            raise SpillSerializationError(key, exc) from exc
        self.write(key, payload)

    def write(self, key: str, payload: Payload) -> None:
        """Store an already serialized value (as it came from a peer or a task)."""
        pending = self.prepare(key, payload)
        try:
            pending.run()
        except BaseException:
            self.abandon(pending)
            raise
        self.finish(pending)

    def prepare(self, key: str, payload: Payload, staged: bool = False) -> PendingWrite:
        """What ``write`` does before the file is written: the frames' codecs chosen and
        room made on disk for them (raises as ``write`` does, and nothing changes). The
        file is written by ``PendingWrite.run``, on any thread, then recorded by
        ``finish`` or forgotten by ``abandon``, both on the mapping's own thread. A
        ``staged`` write goes to a file of its own, renamed as it is finished: a write
        abandoned while it runs never touches a file of the same key written after it."""
        if is_bytes_out_of_band(payload.frames):
            # A bytes value: read back into one bytes object, as it was, only from a frame
            # stored as it is (decompressed, it would be a buffer, copied once more into the
            # value: twice its size in memory, for a moment, as it comes back).
            frames = [(RAW, frame) for frame in payload.frames]
        else:
            frames = [compress(frame, self.codec) for frame in payload.frames]
        serializer = payload.serializer.encode()
        originals = [memoryview(frame).nbytes for frame in payload.frames]
        # (a frame compressed as it is written is counted at its own size until it is)
        stored = [original if type(data) is Streamed else memoryview(data).nbytes
                  for (_, data), original in zip(frames, originals)]
        head_size = _HEAD.size + len(serializer) + _FRAME.size * len(frames)
        reserved = head_size + sum(stored)
        self._make_room(key, reserved)
        path = self._path(key)
        if staged:
            self._staged += 1
            path = f"{path}.{self._staged}.part"
        self.reserved += reserved
        return PendingWrite(key, path, serializer, frames, stored, originals, reserved)

    def finish(self, pending: PendingWrite) -> None:
        """``pending`` was written (``run`` returned): its key is now on disk."""
        self.reserved -= pending.reserved
        path = self._path(pending.key)
        if pending.path != path:
            try:
                os.replace(pending.path, path)
            except OSError:
                _remove(pending.path)
                raise
        self.sizes[pending.key] = pending.size
        self.bytes_written += pending.size

    def abandon(self, pending: PendingWrite) -> None:
        """``pending`` failed, or is not wanted any more (its run has ended): its room on
        disk is given back, its file removed."""
        self.reserved -= pending.reserved
        if pending.path != self._path(pending.key):
            _remove(pending.path)

    def _make_room(self, key: str, size: int) -> None:
        put_back_file_mask()  # (a spill file a task's umask made unreadable would lose its value)
        if not self._made or not os.path.isdir(self.directory):
            # (again when it was removed under the worker: a cleaner of old files in /tmp
            # would otherwise stop it spilling for good)
            os.makedirs(self.directory, exist_ok=True)
            self._made = True
        if self.max_bytes is not None and self.disk_bytes + size > self.max_bytes:
            self.drop_cache()
            if self.disk_bytes + size > self.max_bytes:
                if size > self.max_bytes:
                    raise ValueTooLarge(key, size, self.max_bytes, self.directory)
                raise OSError(errno.ENOSPC, f"the spill directory {self.directory} holds "
                              f"{self.disk_bytes} bytes, its limit is {self.max_bytes}")
        free = shutil.disk_usage(self.directory).free
        if size > free:
            self.drop_cache()
            free = shutil.disk_usage(self.directory).free
            if size > free + sum(self.sizes.values()):
                raise ValueTooLarge(key, size, free, self.directory)
            if size > free:
                raise OSError(errno.ENOSPC, f"no space left in {self.directory}: "
                              f"{free} bytes free, {size} needed")

    def probe(self, room: int = 0) -> None:
        """Raise ``OSError`` unless a file can be written in the directory, and the disk has
        ``room`` bytes free (a value that did not fit would fit now)."""
        os.makedirs(self.directory, exist_ok=True)
        self._made = True
        path = os.path.join(self.directory, ".probe")
        with open(path, "wb") as f:
            f.write(b"ok")
        _remove(path)
        free = shutil.disk_usage(self.directory).free
        if room > free:
            raise OSError(errno.ENOSPC, f"no space left in {self.directory}: {free} bytes "
                          f"free, {room} needed")

    def drop_cache(self) -> None:
        """Delete the files of values that are in memory as well (space is short)."""
        for key in list(self.cached):
            _remove(self._path(key))
            del self.cached[key]

    # -- reading ------------------------------------------------------------------------------
    def read(self, key: str) -> Payload:
        """The stored frames of ``key`` (decompressed), without unpickling them."""
        payload, size = self.read_file(key)
        self.bytes_read += size
        return payload

    def read_file(self, key: str) -> tuple[Payload, int]:
        """``read`` without counting the bytes read (the caller adds them to
        ``bytes_read``): it changes nothing, so it may run on another thread than the
        mapping's, while the key may be freed meanwhile (then it raises ``SpillReadError``,
        as for a file removed)."""
        if key not in self.sizes and key not in self.cached:
            raise KeyError(key)
        try:
            with open(self._path(key), "rb", buffering=0) as f:
                return _read_frames(key, f, os.fstat(f.fileno()).st_size)
        except SpillReadError:
            raise
        except OSError as exc:
            raise SpillReadError(key, exc) from exc

    def __getitem__(self, key: str) -> Any:
        if key not in self.sizes:
            raise KeyError(key)
        payload = self.read(key)
        try:
            return deserialize(payload)
        except MemoryError:
            raise
        except Exception as exc:  # the value's own code, whatever it raises
            raise SpillLoadError(key, exc) from exc

    # -- forgetting ---------------------------------------------------------------------------
    def __delitem__(self, key: str) -> None:
        """The value moved back to memory: keep its file, in case it is evicted again."""
        self.cached[key] = self.sizes.pop(key)

    def forget(self, key: str) -> None:
        """The key was freed: delete its file, if it has one."""
        if self.sizes.pop(key, None) is not None or self.cached.pop(key, None) is not None:
            _remove(self._path(key))

    def clear(self) -> None:
        for key in [*self.sizes, *self.cached]:
            self.forget(key)

    def close(self) -> None:
        self.clear()


def _head(serializer: bytes, frames: list[tuple[int, Any]], stored: list[int],
          originals: list[int]) -> bytes:
    return b"".join([_HEAD.pack(MAGIC, len(serializer), len(frames)), serializer,
                     *(_FRAME.pack(codec, length, original) for (codec, _), length, original
                       in zip(frames, stored, originals))])


def _read_frames(key: str, f: io.FileIO, size: int) -> tuple[Payload, int]:
    """Read the spill file ``f`` (of ``size`` bytes): its payload and the bytes read.

    Each frame is read into a buffer of its own, as a frame that arrived over the network or
    was decompressed is: an array unpickled from it then starts where the allocator aligns
    memory, as the original did. Frames sharing one buffer start wherever the header and the
    frames before them end, and an unaligned array is not only slower: its sums differ in the
    last bits from the same array before it spilled, and code that needs aligned memory
    (compiled kernels, some C extensions) rejects it."""
    if size < _HEAD.size:
        raise OSError(errno.EIO, f"the spill file of {key} is truncated")
    magic, serializer_length, nframes = _HEAD.unpack(_read_exactly(key, f, _HEAD.size))
    if magic != MAGIC:
        raise OSError(errno.EIO, f"the spill file of {key} is not one this worker wrote")
    table_size = serializer_length + nframes * _FRAME.size
    if _HEAD.size + table_size > size:
        raise OSError(errno.EIO, f"the spill file of {key} is damaged")
    table_bytes = _read_exactly(key, f, table_size)
    serializer = bytes(table_bytes[:serializer_length]).decode(errors="replace")
    table = [_FRAME.unpack_from(table_bytes, serializer_length + i * _FRAME.size)
             for i in range(nframes)]
    if serializer not in SERIALIZERS or \
            _HEAD.size + table_size + sum(stored for _, stored, _ in table) != size:
        raise OSError(errno.EIO, f"the spill file of {key} is damaged")
    frames: list[Any] = []
    for packed, stored, original in table:
        if packed == RAW and is_bytes_out_of_band([*frames, None]):
            # The data of a bytes value, read straight into the bytes object it will be
            frames.append(_read_bytes(key, f, stored))
            continue
        if packed == LZ4_FRAME:
            frames.append(_read_lz4_frame(key, f, stored, original))
            continue
        chunk = _read_exactly(key, f, stored)
        if packed == LZ4:
            lz4 = codec_module("lz4")
            if lz4 is None:
                raise OSError(errno.EIO, f"the spill file of {key} needs lz4, which cannot be "
                              "imported here")
            frames.append(lz4.decompress(chunk, uncompressed_size=original,
                                         return_bytearray=True))
        elif packed == ZSTD:
            try:
                frames.append(zstd_decompress_into(memoryview(chunk), original))
            except InvalidMessage as exc:
                raise OSError(errno.EIO, f"the spill file of {key} is damaged: {exc}") from None
        elif packed == RAW:
            frames.append(chunk)
        else:
            raise OSError(errno.EIO, f"the spill file of {key} is damaged")
    return Payload(serializer, frames), size


def _read_exactly(key: str, f: io.FileIO, n: int) -> bytearray | mmap.mmap:
    """The next ``n`` bytes of ``f``, in a (writable) buffer of their own (``frame_buffer``:
    not zeroed in full first, holding the interpreter, when it is large)."""
    data = frame_buffer(n)
    view = memoryview(data)
    got = 0
    while got < n:
        more = f.readinto(view[got:])
        if not more:
            raise OSError(errno.EIO, f"short read of the spilled value of {key}")
        got += more
    return data


def _read_bytes(key: str, f: io.FileIO, n: int) -> bytes:
    """The next ``n`` bytes of ``f`` as one ``bytes`` object, read into it directly (one
    system call reads a whole regular file; should one come short, the rest is joined)."""
    data = f.read(n)
    if data is None or len(data) < n:
        rest = _read_exactly(key, f, n - len(data or b""))
        data = (data or b"") + rest
    return data


def _create(path: str) -> io.BufferedWriter:
    """``path`` opened for writing, its folder made again if it was removed since the write
    was prepared (as a cleaner of old files in /tmp does): a folder gone is not a disk that
    fails, and writing on the loop makes it again too (``DiskMapping._make_room``)."""
    try:
        return open(path, "wb")
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "wb")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
