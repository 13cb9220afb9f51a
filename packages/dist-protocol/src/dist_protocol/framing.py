"""Framing: bytes <-> frames, incremental, with limits. No I/O.

A batch on the wire is::

    u64 nframes | u64 length[0] ... u64 length[nframes-1] | frame[0] ... frame[nframes-1]

All integers are unsigned 64-bit little-endian. Frame 0 is the msgpack message list; further
frames are payloads referenced by index. The decoder reads into buffers it hands out
(``get_buffer``/``buffer_updated``), so a large frame is received straight into its own
buffer, not through a staging buffer. A very large frame's buffer is an anonymous memory map:
the kernel backs its pages only as bytes arrive, so what a peer announces costs nothing until
it sends it, the frame is never copied to grow, and its memory goes back to the system as soon
as the frame is dropped.
"""
from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Sequence

from typing import Any

from .errors import FramingError, LimitExceeded, NoRoomForFrame
from .large_bytes import bytes_to_fill, received_as_bytes

U64 = struct.Struct("<Q")
# The lengths of a batch of n frames, for the usual small n (one Struct each, made once).
_LENGTHS = {n: struct.Struct(f"<{n}Q") for n in range(1, 17)}

# Frames at least this large are read into a buffer of their own (no copy from the staging
# buffer); smaller frames are sliced out of the staging buffer as bytes.
DIRECT_READ_THRESHOLD = 64 * 1024
# Frames at least this large get a memory map rather than a bytearray (which would be zeroed,
# and so paid for, in full before any byte arrives).
MAPPED_THRESHOLD = 2**20
STAGING_SIZE = 256 * 1024
FIRST_STAGING_SIZE = 16 * 1024


# Private: a shared anonymous map is backed by shared memory, whose pages cost more to fault in.
_MAP_FLAGS = (getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)) or None
_HUGE_PAGES = getattr(mmap, "MADV_HUGEPAGE", None)


def frame_buffer(length: int) -> bytearray | mmap.mmap:
    """A writable buffer of ``length`` bytes for a frame to be read or decompressed into: a
    large one is an anonymous memory map, whose pages the kernel zeroes as they are first
    written. A ``bytearray`` is zeroed in full as it is made, holding the interpreter: 400 MB
    took 0.2-1.9 s on a loaded machine, for which a thread decompressing a spilled value held
    up the worker's event loop as long as reading it there would have."""
    try:
        if length >= MAPPED_THRESHOLD and _MAP_FLAGS is not None:
            buffer = mmap.mmap(-1, length, flags=_MAP_FLAGS)
            if _HUGE_PAGES is not None:
                # What numpy does for its large arrays: one fault per 2 MiB rather than 4 KiB.
                with contextlib.suppress(OSError):
                    buffer.madvise(_HUGE_PAGES)
            return buffer
        return bytearray(length)
    except (OSError, MemoryError) as exc:  # the system refuses that much address space
        raise NoRoomForFrame(f"cannot make room for a frame of {length} bytes: {exc}") from None


class Limits:
    """What a decoder accepts. The unauthenticated limits are the ones before the handshake."""

    __slots__ = ("max_frames", "max_frame_bytes", "max_batch_bytes")

    def __init__(self, max_frames: int = 100_000, max_frame_bytes: int = 2**34,
                 max_batch_bytes: int = 2**35):
        self.max_frames = max_frames
        self.max_frame_bytes = max_frame_bytes
        self.max_batch_bytes = max_batch_bytes

    @classmethod
    def for_options(cls, max_frames: int, max_frame_bytes: int,
                    max_batch_bytes: int | None = None) -> Limits:
        """Limits from a server's options; the batch limit defaults to two of the largest frame."""
        if max_batch_bytes is None:
            max_batch_bytes = 2 * max_frame_bytes
        if max_batch_bytes < max_frame_bytes:
            raise ValueError(f"the batch limit ({max_batch_bytes} bytes) is below the frame "
                             f"limit ({max_frame_bytes} bytes)")
        return cls(max_frames=max_frames, max_frame_bytes=max_frame_bytes,
                   max_batch_bytes=max_batch_bytes)

    def __repr__(self) -> str:
        return (f"Limits(max_frames={self.max_frames}, max_frame_bytes={self.max_frame_bytes}, "
                f"max_batch_bytes={self.max_batch_bytes})")


UNAUTHENTICATED_LIMITS = Limits(max_frames=1, max_frame_bytes=4096, max_batch_bytes=4096)
DEFAULT_LIMITS = Limits()


def staging_size(limits: Limits) -> int:
    """The staging buffer a decoder needs: no more than the largest batch its limits admit,
    so each of thousands of unauthenticated connections (a few KiB at most) costs little."""
    return min(STAGING_SIZE, 8 * (limits.max_frames + 1) + limits.max_batch_bytes)


def encode_frames(frames: Sequence[bytes | bytearray | memoryview]) -> list[Any]:
    """The buffers to write for one batch: a header, then the frames themselves, unjoined."""
    if not frames:
        raise FramingError("a batch needs at least one frame")
    sizes = [memoryview(f).nbytes for f in frames]
    header = struct.pack(f"<{len(sizes) + 1}Q", len(sizes), *sizes)
    return [header, *frames]


def frames_to_bytes(frames: Sequence[bytes | bytearray | memoryview]) -> bytes:
    return b"".join(bytes(b) for b in encode_frames(frames))


class FrameDecoder:
    """Incremental decoder: feed bytes (or fill the buffers it hands out), get whole batches."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self._limits = limits
        # The staging buffer starts small and doubles, up to ``_room``, while reads fill all
        # of it: a connection that only ever exchanges small messages (most clients, and a
        # thousand of them may be open) holds a few KiB, not the 256 KiB a stream needs.
        self._room = staging_size(limits)
        self._buf = bytearray(min(self._room, FIRST_STAGING_SIZE))
        # A view of it, kept: frames are sliced out of it and reads offered from it, each
        # without a view made for the purpose (the buffer is replaced, never resized).
        self._view = memoryview(self._buf)
        self._offered = 0  # the size of the last staging view handed out
        self._filled = False  # the last read filled all of it
        self._start = 0
        self._end = 0
        self._lengths: Sequence[int] | None = None
        self._nframes: int | None = None
        self._frames: list[Any] = []
        self._direct: bytearray | mmap.mmap | memoryview | None = None
        # The frame itself when ``_direct`` is a view of a ``bytes`` object being filled.
        self._direct_value: bytes | None = None
        self._direct_filled = 0
        self._direct_length = 0

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        """New limits (after the handshake); the staging buffer may grow to suit them, when
        the reads show it is too small."""
        self._limits = limits
        self._room = staging_size(limits)

    # -- the buffer interface (asyncio.BufferedProtocol) ---------------------------------
    def get_buffer(self, sizehint: int = -1) -> memoryview:
        if self._direct is not None:
            return memoryview(self._direct)[self._direct_filled:]
        if self._filled and len(self._buf) < self._room:
            self._resize(min(self._room, 2 * len(self._buf)))
            self._filled = False
        elif self._end == len(self._buf):
            self._make_room(len(self._buf) // 2 or 1)
        self._offered = len(self._buf) - self._end
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int, max_batches: int | None = None) -> list[list[Any]]:
        """Account for ``nbytes`` written into the last ``get_buffer``; returns the batches
        they complete, at most ``max_batches`` (the rest stay buffered: ``parse_buffered``)."""
        if self._direct is not None:
            self._direct_filled += nbytes
            if self._direct_filled < self._direct_length:
                return []
            self._frames.append(self._direct if self._direct_value is None
                                else self._direct_value)
            self._direct = self._direct_value = None
        else:
            self._end += nbytes
            self._filled = nbytes >= self._offered
        return self._parse(max_batches)

    def parse_buffered(self, max_batches: int | None = None) -> list[list[Any]]:
        """Batches complete in what is already buffered, under the current limits.

        During the handshake the comm takes one batch at a time and calls this after each:
        the batch that completes the handshake raises the limits for the batches behind it.
        """
        if self._direct is not None:
            return []
        return self._parse(max_batches)

    def feed(self, data: bytes | bytearray | memoryview) -> list[list[Any]]:
        """Decode ``data``; returns every batch it completes (a list of frame lists)."""
        view = memoryview(data).cast("B")
        batches: list[list[Any]] = []
        while view.nbytes:
            target = self.get_buffer()
            n = min(target.nbytes, view.nbytes)
            target[:n] = view[:n]
            view = view[n:]
            batches.extend(self.buffer_updated(n))
        return batches

    @property
    def unread(self) -> bool:
        """Bytes are buffered that no batch has taken yet (whole batches among them or not)."""
        return self._start != self._end

    @property
    def idle(self) -> bool:
        """True between batches (nothing partial is buffered)."""
        return (self._nframes is None and self._start == self._end and self._direct is None)

    # -- parsing ---------------------------------------------------------------------------
    def _available(self) -> int:
        return self._end - self._start

    def _make_room(self, needed: int) -> None:
        """Ensure ``needed`` bytes fit after the unread data, compacting or growing.

        Growing allocates a new buffer instead of resizing: the transport may still hold a
        view of the old one, and a bytearray with live views cannot change size.
        """
        unread = self._available()
        if len(self._buf) - unread < needed:
            self._resize(max(len(self._buf) * 2, unread + needed))
            return
        if self._start:
            self._buf[:unread] = self._buf[self._start:self._end]
        self._start, self._end = 0, unread

    def _resize(self, size: int) -> None:
        unread = self._available()
        grown = bytearray(size)
        grown[:unread] = self._buf[self._start:self._end]
        self._buf, self._start, self._end = grown, 0, unread
        self._view = memoryview(grown)

    def _read_lengths(self, buf: bytearray, start: int, nframes: int) -> tuple[Sequence[int], int]:
        """A batch's frame lengths, found within the limits, and their sum."""
        unpack = _LENGTHS.get(nframes) or struct.Struct(f"<{nframes}Q")
        lengths = unpack.unpack_from(buf, start)
        limits = self._limits
        max_frame = limits.max_frame_bytes
        if max(lengths) > max_frame:
            raise LimitExceeded(f"frame of {max(lengths)} bytes exceeds the limit of {max_frame}")
        total = sum(lengths)
        if total > limits.max_batch_bytes:
            raise LimitExceeded(f"batch of {total} bytes exceeds the limit of "
                                f"{limits.max_batch_bytes}")
        return lengths, total

    def _parse(self, max_batches: int | None = None) -> list[list[Any]]:
        batches: list[list[Any]] = []
        limits = self._limits
        while max_batches is None or len(batches) < max_batches:
            buf, start, end = self._buf, self._start, self._end
            nframes = self._nframes
            if nframes is None:
                if end - start < 8:
                    break
                (nframes,) = U64.unpack_from(buf, start)
                if nframes == 0:
                    raise FramingError("a batch must have at least one frame")
                if nframes > limits.max_frames:
                    raise LimitExceeded(f"batch of {nframes} frames exceeds the limit of "
                                        f"{limits.max_frames}")
                start += 8
                if end - start >= 8 * nframes:
                    unpack = _LENGTHS.get(nframes)
                    sizes: Sequence[int]
                    if unpack is not None:  # (``_read_lengths``, inlined for the usual batch)
                        sizes = unpack.unpack_from(buf, start)
                        total = sum(sizes)
                        if max(sizes) > limits.max_frame_bytes or total > limits.max_batch_bytes:
                            self._read_lengths(buf, start, nframes)  # raises, saying which
                    else:
                        sizes, total = self._read_lengths(buf, start, nframes)
                    start += 8 * nframes
                    if end - start >= total:
                        # The usual case, a whole batch buffered: its frames cut out at once.
                        view = self._view
                        frames = []
                        for length in sizes:
                            frames.append(view[start:start + length].tobytes())  # (one copy)
                            start += length
                        if start == end:  # the next batch starts at the front of the buffer
                            start = self._end = 0
                        self._start = start
                        batches.append(frames)
                        continue
                    self._start, self._nframes, self._lengths = start, nframes, sizes
                else:
                    self._start, self._nframes = start, nframes
            lengths = self._lengths
            if lengths is None:
                need = 8 * nframes
                if end - start < need:
                    if len(buf) - start < need:
                        self._make_room(need)
                    break
                lengths, _ = self._read_lengths(buf, start, nframes)
                start += need
                self._start = start
                self._lengths = lengths
            frames = self._frames
            view = self._view
            while len(frames) < nframes:
                length = lengths[len(frames)]
                available = end - start
                if available >= length:
                    frames.append(view[start:start + length].tobytes())  # (one copy)
                    start += length
                    continue
                if available == 0:  # (the next bytes go to the front of the buffer)
                    start = end = self._end = 0
                self._start = start
                if length >= DIRECT_READ_THRESHOLD:
                    # A large ``bytes`` value's frame is received into the value itself.
                    to_fill = bytes_to_fill(length) if received_as_bytes(frames) else None
                    direct: bytearray | mmap.mmap | memoryview
                    if to_fill is None:
                        direct = frame_buffer(length)
                    else:
                        self._direct_value, direct = to_fill
                    direct[:available] = buf[start:end]
                    self._start = self._end = 0
                    self._direct, self._direct_filled = direct, available
                    self._direct_length = length
                elif len(buf) - start < length:
                    self._make_room(length - available)
                return batches
            # Everything read: the next batch starts at the front of the buffer again.
            if start == end:
                start = self._end = 0
            self._start = start
            batches.append(frames)
            self._frames, self._lengths, self._nframes = [], None, None
        return batches
