"""The batch codec: a list of messages <-> the frames of one batch (frame 0 the msgpack list of
message maps or column blocks, payload frames after it). No I/O.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any

import msgpack

from . import columns
from .errors import InvalidMessage, UnknownOp
from .message_base import OPS, Message
from .wiretypes import BatchFrames

# Bound at import, as the codecs in serialize.py are: a task that replaces msgpack's functions
# in its worker's process must not change how the worker's messages are framed.
_Packer, _unpackb = msgpack.Packer, msgpack.unpackb
_new_list = list.__new__


class _Packers(threading.local):
    """A msgpack packer per thread: making one (and its buffer) for every batch cost more
    than packing a batch of one small message."""

    def __init__(self) -> None:
        self.pack = _Packer(use_bin_type=True).pack


_PACKERS = _Packers()


def encode_batch(messages: list[Message]) -> list[Any]:
    """Frames for one batch: frame 0 is the msgpack list, payload frames follow."""
    frames: list[Any] = [b""]
    seen: dict[Any, Any] = {}
    wire = [type(m)._encode(m, frames, seen) for m in messages]
    frames[0] = _PACKERS.pack(wire)
    return frames


_COLUMNAR, _MIN_RUN = columns.COLUMNAR, columns.MIN_RUN
_NO_MARKS: dict[Any, Any] = {}
_COLUMNAR_MARKS = {_COLUMNAR: True}
_FRAME_COLUMN_MARKS = {_COLUMNAR: True, columns.FRAME_COLUMNS: True}


def encode_batches(messages: list[Message], max_frames: int, columnar: bool = False,
                   frame_columns: bool = False) -> list[list[Any]]:
    """Like ``encode_batch``, but starts a new batch whenever one reaches ``max_frames``
    frames, so a burst of messages never exceeds the receiver's frame-count limit.
    ``columnar`` (the peer agreed ``columns``): runs of messages of one op go as column
    blocks; ``frame_columns`` (and ``frame-columns``): their columns of one-frame payloads
    as frame columns."""
    # ``marks``: what a batch's ``seen`` starts with, the forms the peer agreed to read.
    if columnar:
        marks = _FRAME_COLUMN_MARKS if frame_columns else _COLUMNAR_MARKS
        if len(messages) >= _MIN_RUN:
            # Only two messages of one op in a row make a block: a lone message's mixed
            # batch (a submit with a release, a compute-task with a free-keys) is written
            # message by message, byte for byte as the column path would, without its
            # grouping. (A loop written out here: a call costs such a batch more.)
            previous = None
            for message in messages:
                kind = type(message)
                if kind is previous:
                    return _encode_columnar(messages, max_frames, marks)
                previous = kind
    else:
        marks = _NO_MARKS
    # (a batch of one message has no run; its lists of records may still be column lists)
    batches = []
    frames: list[Any] = [b""]
    seen: dict[Any, Any] = dict(marks)
    wire: list[Any] = []
    for m in messages:
        wire.append(type(m)._encode(m, frames, seen))
        if len(frames) >= max_frames:
            frames[0] = _PACKERS.pack(wire)
            batches.append(frames)
            frames, seen, wire = [b""], dict(marks), []
    if wire:
        frames[0] = _PACKERS.pack(wire)
        batches.append(frames)
    return batches


def _encode_columnar(messages: list[Message], max_frames: int,
                     marks: dict[Any, Any]) -> list[list[Any]]:
    batches = []
    frames: list[Any] = [b""]
    seen: dict[Any, Any] = dict(marks)
    wire: list[Any] = []
    for cls, group in itertools.groupby(messages, type):
        run = list(group)
        start = 0
        with_payloads = columns.carries_payloads(cls)
        while start < len(run):
            end = min(len(run), start + columns.MAX_COUNT)
            if with_payloads:
                # A block's payload frames are all added at once: it ends with the message
                # that may bring the batch to ``max_frames``, where the batch was cut when
                # written message by message.
                end = columns.block_end(run, start, end, max_frames - len(frames))
            part = run[start:end]
            start = end
            item = columns.encode_block(part, frames, seen) if len(part) >= columns.MIN_RUN \
                else None
            if item is not None:
                wire.append(item)
            else:
                wire.extend(type(m)._encode(m, frames, seen) for m in part)
            if len(frames) >= max_frames:
                frames[0] = _PACKERS.pack(wire)
                batches.append(frames)
                frames, seen, wire = [b""], dict(marks), []
    if wire:
        frames[0] = _PACKERS.pack(wire)
        batches.append(frames)
    return batches


def decode_batch(frames: list[Any], columnar: bool = False,
                 frame_columns: bool = False) -> list[Message]:
    """Messages of one batch. Raises ``InvalidMessage``/``UnknownOp`` on anything malformed.
    ``columnar`` (the connection agreed ``columns``): column blocks are read too;
    ``frame_columns`` (and ``frame-columns``): frame columns in them."""
    try:
        wire = _unpackb(frames[0], raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # noqa: BLE001 -- msgpack raises several types for bad input
        raise InvalidMessage(f"frame 0 is not valid msgpack: {type(exc).__name__}") from None
    if type(wire) is not list:
        raise InvalidMessage("frame 0 must be a msgpack list of message maps")
    # (made without ``BatchFrames.__init__``: a Python ``__init__`` and its ``super()`` cost
    # more than the rest of a lone small message's decoding in its batch)
    batch = _new_list(BatchFrames)
    batch += frames
    batch.payloads, batch.columnar, batch.frame_columns = {}, columnar, (
        columnar and frame_columns)
    frames = batch
    out = []
    for item in wire:
        if type(item) is not dict:
            if columnar and type(item) is list:
                out.extend(columns.decode_block(item, frames, OPS))
                continue
            raise InvalidMessage("each message must be a map" + (
                " or a column block" if columnar else ""))
        op = item.get("op")
        cls = OPS.get(op) if type(op) is str else None
        if cls is None:
            raise UnknownOp(f"unknown op {op!r}" if type(op) is str else "message without an op")
        out.append(cls._decode(item, frames))
    return out
