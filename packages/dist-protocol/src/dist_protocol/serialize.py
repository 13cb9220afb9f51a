"""Payloads: how values travel. No I/O.

A payload names its serializer and carries its frames:

* ``msgpack`` -- one frame of msgpack, readable from any language. A reference to another key
  inside the value is msgpack extension type 1 holding the key as UTF-8 (``KeyRef``).
* ``pickle``  -- cloudpickle, Python only: frame 0 is the pickle (protocol 5), each further frame
  is an out-of-band buffer, so large arrays are never copied into the pickle stream.
* ``bytes``   -- one frame of raw bytes.

Only workers and clients deserialize ``pickle``, and only on authenticated connections; the
center passes payloads through unopened.
"""
from __future__ import annotations

import contextlib
import copyreg
import functools
import io
import mmap
import pickle
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from .errors import MissingDependency
from .large_bytes import bytes_arguments, copied_in_steps, is_large, stepped_bytes_unpickler

KEYREF_EXT = 1

# What the codecs call, bound once at import. A task runs in its worker's process, and a
# task (or a library it imports) that replaces ``pickle.loads`` or ``msgpack.packb`` there
# changes its own calls only: looked up at each call, they left the worker unable to read
# any later task or to speak to its center, for good.
_plain_dumps, _plain_loads, _Pickler = pickle.dumps, pickle.loads, pickle.Pickler
_new_payload = object.__new__
_Packer, _unpackb, _ExtType = msgpack.Packer, msgpack.unpackb, msgpack.ExtType
SERIALIZERS = ("msgpack", "pickle", "bytes")
_SERIALIZER_NAMES = {name: name for name in SERIALIZERS}


class KeyRef:
    """Stands for the value of another key inside task arguments; the worker substitutes it."""

    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key

    def __repr__(self) -> str:
        return f"KeyRef({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyRef) and other.key == self.key

    def __hash__(self) -> int:
        return hash(("KeyRef", self.key))

    def __reduce__(self) -> tuple[type[KeyRef], tuple[str]]:
        return (KeyRef, (self.key,))


def substitute(value: Any, inputs: dict[str, Any]) -> Any:
    """``value`` with every ``KeyRef`` inside its lists, tuples (named ones too), sets and
    dicts replaced by that key's value in ``inputs``, as a worker does before calling a
    task's function; ``MissingDependency`` for a key ``inputs`` does not have."""
    kind = type(value)
    if kind is KeyRef:
        try:
            return inputs[value.key]
        except KeyError:
            raise MissingDependency(f"the arguments reference key {value.key!r}, which is not "
                                    f"among the task's deps (deps must list every key the "
                                    f"arguments reference)") from None
    if kind is list:
        return [substitute(v, inputs) for v in value]
    if kind is tuple:
        return tuple(substitute(v, inputs) for v in value)
    if kind is dict:
        return {k: substitute(v, inputs) for k, v in value.items()}
    if kind is set or kind is frozenset:
        return kind(substitute(v, inputs) for v in value)
    if isinstance(value, tuple) and hasattr(kind, "_make"):  # a namedtuple, as dask reads one
        return kind._make(substitute(v, inputs) for v in value)
    return value


class Payload:
    """A serialized value: a serializer name and its frames (bytes-like objects)."""

    __slots__ = ("serializer", "frames", "compression")

    def __init__(self, serializer: str, frames: list[Any]):
        # The name as one shared string: read from the wire it is a copy per payload, and a
        # center holds a payload per task in flight.
        self.serializer = (_SERIALIZER_NAMES.get(serializer, serializer)
                           if type(serializer) is str else serializer)
        self.frames = frames
        # Per frame, the codec it is compressed with on the wire (None: plain), or None when
        # no frame is; only while crossing a connection (see ``compression.py``).
        self.compression: list[Any] | None = None

    @property
    def nbytes(self) -> int:
        frames = self.frames
        if len(frames) == 1 and type(frames[0]) is bytes:  # most payloads: asked per task
            return len(frames[0])
        return sum(memoryview(f).nbytes for f in frames)

    def __repr__(self) -> str:
        return f"<Payload {self.serializer} {len(self.frames)} frames {self.nbytes} bytes>"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Payload) and other.serializer == self.serializer
                and [bytes(f) for f in other.frames] == [bytes(f) for f in self.frames])


class SerializationError(pickle.PicklingError):
    """A value could not be serialized (or deserialized) with the serializers allowed.

    A ``pickle.PicklingError``, so code written for ``concurrent.futures`` executors (which
    raise that when a call cannot be pickled) catches it too.
    """


def _msgpack_default(obj: Any) -> Any:
    if isinstance(obj, KeyRef):
        return _ExtType(KEYREF_EXT, obj.key.encode())
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot represent {type(obj).__name__} in msgpack")


def _msgpack_ext(code: int, data: bytes) -> Any:
    if code == KEYREF_EXT:
        return KeyRef(data.decode())
    return _ExtType(code, data)


# msgpack's own extension type: a timestamp (seconds and nanoseconds since 1970, in UTC).
TIMESTAMP_EXT = -1


def _argument_ext(code: int, data: bytes) -> Any:
    if code == KEYREF_EXT:
        return KeyRef(data.decode())
    raise SerializationError(
        f"the task's msgpack arguments hold extension type {code} ({len(data)} bytes), which "
        f"the protocol does not define: only type {KEYREF_EXT} (a key reference) and msgpack's "
        f"timestamp ({TIMESTAMP_EXT}) may appear in them; send other values as msgpack's own "
        f"types (PROTOCOL.md, Serializers)")


def msgpack_arguments_loads(data: Any) -> Any:
    """A task's ``args`` written in msgpack, by a client in any language, as the function
    receives them: key references as ``KeyRef``, timestamps as UTC ``datetime``s, and any
    other extension type a ``SerializationError`` that errs the task -- passed on, it would
    reach the function as a ``msgpack.ExtType``, which no function is written to take, and
    fail there or, worse, not (PROTOCOL.md, Serializers)."""
    try:
        return _unpackb(data, raw=False, ext_hook=_argument_ext, strict_map_key=False,
                        timestamp=3)
    except SerializationError:
        raise
    except BaseException as exc:  # (as in deserialize)
        raise _cannot_deserialize("msgpack", exc) from exc


def msgpack_dumps(obj: Any) -> bytes:
    # (what msgpack.packb does, whose Packer is looked up at each call)
    packed: bytes = _Packer(use_bin_type=True, default=_msgpack_default,
                            strict_types=False).pack(obj)
    return packed


def msgpack_loads(data: Any) -> Any:
    return _unpackb(data, raw=False, ext_hook=_msgpack_ext, strict_map_key=False)


# A broadcast array at least this large (as it looks) travels as the data it repeats.
BROADCAST_MIN_BYTES = 64 * 1024
# A pickler's output buffer kept for its thread's next pickle, if no larger than this.
KEPT_OUTPUT_BYTES = 1 << 20
_tables: dict[Any, tuple[int, dict[Any, Any]]] = {}
_per_thread = threading.local()


def pickle_dumps(obj: Any, buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None
                 ) -> bytes:
    """``pickle.dumps(obj, protocol=5)``, but numpy's broadcast arrays (``np.broadcast_to``:
    a little data repeated by zero strides) pickle as the data they repeat, not as the
    copy of every element numpy's own pickling makes of them: ``np.broadcast_to(1, [2] *
    27)`` holds eight bytes and pickles to a GiB."""
    numpy = sys.modules.get("numpy")
    # (nothing broadcast can be in it; nor while numpy is half imported, by another thread)
    if numpy is None or not hasattr(numpy, "ndarray"):
        return _plain_dumps(obj, protocol=5, buffer_callback=buffer_callback)
    own = getattr(_per_thread, "pickler", None)
    if own is None or own.busy:  # (a __reduce__ may pickle something itself)
        own = _ThreadPickler()
        _per_thread.pickler = own
    return own.dumps(obj, buffer_callback, _dispatch_table(numpy))


def pickle_dumps_overriding(obj: Any, reducer_override: Callable[[Any], Any],
                            buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None,
                            ) -> bytes:
    """``pickle_dumps(obj, buffer_callback)`` (without one, buffers in band), with
    ``reducer_override`` asked first for each object the pickler writes, as
    ``pickle.Pickler.reducer_override`` is: a reduction, or ``NotImplemented`` for the usual
    way. A pickler made for the call: for the few pickles that need it, not for every task's
    arguments."""
    out = io.BytesIO()
    pickler = _OverridingPickler(out, reducer_override, buffer_callback)
    numpy = sys.modules.get("numpy")
    if numpy is not None and hasattr(numpy, "ndarray"):
        pickler.dispatch_table = _dispatch_table(numpy)
    pickler.dump(obj)
    return out.getvalue()


class _OverridingPickler(pickle.Pickler):
    def __init__(self, out: io.BytesIO, reducer_override: Callable[[Any], Any],
                 buffer_callback: Callable[[pickle.PickleBuffer], Any] | None) -> None:
        self._override = reducer_override
        super().__init__(out, protocol=5, buffer_callback=buffer_callback)

    def reducer_override(self, obj: Any) -> Any:
        return self._override(obj)


class _ThreadPickler:
    """A pickler kept by its thread: one made per call would cost three times what pickling
    a task's small arguments costs."""

    def __init__(self) -> None:
        self.callback: Callable[[pickle.PickleBuffer], Any] | None = None
        self.busy = False
        self._new_output()

    def _new_output(self) -> None:
        self.out = io.BytesIO()
        self.pickler = _Pickler(self.out, protocol=5, buffer_callback=self._buffer)

    def _buffer(self, buffer: pickle.PickleBuffer) -> Any:
        # Without a callback of the caller's, buffers go in band (a true return says so).
        return True if self.callback is None else self.callback(buffer)

    def dumps(self, obj: Any, callback: Callable[[pickle.PickleBuffer], Any] | None,
              table: dict[Any, Any]) -> bytes:
        self.busy, self.callback = True, callback
        pickler, out = self.pickler, self.out
        pickler.dispatch_table = table
        try:
            pickler.dump(obj)
            return out.getvalue()
        finally:
            pickler.clear_memo()  # (the memo holds the objects written: let them go)
            if out.tell() > KEPT_OUTPUT_BYTES:  # a large pickle's buffer is not kept
                self._new_output()
            else:
                out.seek(0)
                out.truncate()
            self.busy, self.callback = False, None


def _dispatch_table(numpy: Any) -> dict[Any, Any]:
    """copyreg's reducers (the process's own stay in force; a table made again when it
    registers more) and numpy arrays'. A dict, not a live ``ChainMap``: the pickler looks
    up the table for nearly every object it writes."""
    registered = len(copyreg.dispatch_table)
    table = _tables.get(numpy)
    if table is None or table[0] != registered:
        def reduce_array(array: Any) -> Any:
            return _reduce_array(numpy, array)
        table = _tables[numpy] = (registered, {**copyreg.dispatch_table,
                                                numpy.ndarray: reduce_array})
    return table[1]


def _reduce_array(numpy: Any, array: Any) -> Any:
    # Only read-only ones: an array written through its zero strides (``as_strided``) is
    # the user's to change, and travels as numpy sends it.
    if (0 not in array.strides or array.flags.writeable
            or array.nbytes < BROADCAST_MIN_BYTES):
        return array.__reduce_ex__(5)
    repeated = tuple(slice(0, 1) if stride == 0 else slice(None) for stride in array.strides)
    # A copy: contiguous and writeable, so it pickles as an ordinary array, out of band.
    data = numpy.array(array[repeated], copy=True)
    return (numpy.broadcast_to, (data, array.shape))


def _names_a_module_sent_by_value(head: bytes) -> bool:
    """Whether a plain pickle names a module registered with cloudpickle's
    ``register_pickle_by_value`` (a match of the name anywhere at worst costs the pickling
    with cloudpickle). None is registered before cloudpickle is imported."""
    cloudpickle = sys.modules.get("cloudpickle")
    if cloudpickle is None:
        return False
    registered = cloudpickle.list_registry_pickle_by_value()
    # (nearly always none: then no generator is made and run, per value pickled)
    return bool(registered) and any(name.encode() in head for name in registered)


# Values whose pickle is their own bytes, never a module's name nor an out-of-band buffer:
# pickled at once (a small task result is most often one of these).
_PLAIN_SCALARS = frozenset((int, float, bool, type(None), str, bytes, complex))


# A ``bytes`` value at least this large travels as an out-of-band buffer: the object itself
# is the frame sent or spilled. Pickled in band, the pickle held a second copy of it for as
# long as it took to send or write (a 250 MB value on a 300 MB worker passed the limit).
BYTES_OUT_OF_BAND = 1 << 20


class _BytesOutOfBand:
    """Pickles as ``bytes(<buffer>)`` with the data as an out-of-band buffer (any Python reads
    it back: the call is the builtin's)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[type[bytes], tuple[pickle.PickleBuffer]]:
        return (bytes, (pickle.PickleBuffer(self.data),))


def bytes_out_of_band(data: bytes) -> Any:
    """``data``, to be pickled (inside another value too) as ``bytes(<buffer>)`` with the data
    as an out-of-band buffer: a pickle writes a ``bytes`` object itself in band, copied in
    whole, before anything can look at it (``Pickler.reducer_override`` is never asked)."""
    return _BytesOutOfBand(data)


def is_bytes_out_of_band(frames: list[Any]) -> bool:
    """Whether ``frames`` are a pickle of a ``bytes`` value sent out of band (its second frame
    is the data): a reader that can put the data into a ``bytes`` object of its own at once
    (a spill file read back) has the value without a second copy."""
    return len(frames) == 2 and frames[0] == BYTES_OUT_OF_BAND_HEAD


def _out_of_band(buffer: pickle.PickleBuffer) -> None:
    """A pickler's buffer callback: every buffer out of band (the caller has it already)."""


def _pickle_dumps(obj: Any) -> list[Any]:
    if type(obj) in _PLAIN_SCALARS:
        if type(obj) is bytes and len(obj) >= BYTES_OUT_OF_BAND:
            return [_plain_dumps(_BytesOutOfBand(obj), protocol=5, buffer_callback=_out_of_band),
                    obj]
        return [_plain_dumps(obj, protocol=5)]
    buffers: list[pickle.PickleBuffer] = []
    try:
        head = pickle_dumps(obj, buffer_callback=buffers.append)
        # Objects of the user's __main__ pickle by reference, which the far side cannot resolve;
        # so do those of modules the user registered with cloudpickle to travel by value.
        if b"__main__" not in head and not _names_a_module_sent_by_value(head):
            return [head, *(b.raw() for b in buffers)] if buffers else [head]
    except Exception:  # noqa: BLE001 -- plain pickle declined; cloudpickle is the fallback
        pass
    buffers.clear()
    head = _cloudpickle_dumps()(obj, protocol=5, buffer_callback=buffers.append)
    return [head, *(b.raw() for b in buffers)]


BYTES_OUT_OF_BAND_HEAD = _plain_dumps(_BytesOutOfBand(b""), protocol=5,
                                      buffer_callback=_out_of_band)


def serialize_plain(obj: Any) -> Payload:
    """``serialize(obj)`` for a value its caller knows to hold only numbers, strings, bytes
    and None, in tuples and dicts (a call's arguments, as the client packs them): such a
    pickle names no module and has no buffer out of band, so it is made at once, without
    the looks ``serialize`` takes for the values it is not sure of. (Made without a call of
    ``Payload.__init__``: a map's task or a worker's small result makes one each.)"""
    payload = _new_payload(Payload)
    payload.serializer, payload.frames, payload.compression = (
        "pickle", [_plain_dumps(obj, protocol=5)], None)
    return payload


def serialize(obj: Any, serializers: Iterable[str] = ("pickle",)) -> Payload:
    """Serialize with the first serializer of ``serializers`` that can represent ``obj``."""
    errors = []
    for name in serializers:
        try:
            if name == "bytes":
                if isinstance(obj, (bytes, bytearray, memoryview)):
                    return Payload("bytes", [obj])
                errors.append(f"bytes: not a bytes-like object ({type(obj).__name__})")
            elif name == "msgpack":
                return Payload("msgpack", [msgpack_dumps(obj)])
            elif name == "pickle":
                return Payload("pickle", _pickle_dumps(obj))
            else:
                errors.append(f"{name}: unknown serializer")
        except Exception as exc:  # noqa: BLE001 -- the message names each serializer's failure
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise SerializationError(f"cannot serialize {type(obj).__name__}: " + "; ".join(errors))


class CodeRefused(SerializationError):
    """A pickle from a process on another Python minor version holds Python code."""


# Functions and classes pickled by value (a closure, a lambda, anything defined in
# ``__main__``) carry their bytecode, which changes between Python minor versions: a 3.11
# worker's closure with a comprehension, read and called by a 3.12 worker, ended it (no
# word, no result). Tasks are kept to their Python by their ``pickled_with``, but a value
# holding such code also travels between workers and to clients. A pickle made by another
# minor version is read by this unpickler, which builds no code object: data reads as usual,
# code is refused with an error. (cloudpickle builds code objects through ``_builtin_type``.)
class _CodelessUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in (("types", "CodeType"), ("builtins", "code"),
                              ("marshal", "loads")):
            raise CodeRefused(f"the pickle holds Python code ({module}.{name})")
        found = super().find_class(module, name)
        if name == "_builtin_type" and module.startswith("cloudpickle"):
            return _builtin_type_without_code(found)
        return found


def _builtin_type_without_code(builtin_type: Callable[[str], Any]) -> Callable[[str], Any]:
    def without_code(name: str) -> Any:
        if name in ("CodeType", "FunctionType", "LambdaType"):
            raise CodeRefused("the pickle holds Python code (a function or a method pickled "
                              "by value)")
        return builtin_type(name)
    return without_code


def deserialize(payload: Payload, allow_pickle: bool = True, code: bool = True) -> Any:
    """``code=False``: a pickle that holds Python code raises ``CodeRefused`` instead (a
    payload made by another Python minor version)."""
    name = payload.serializer
    frames = payload.frames
    try:
        if name == "msgpack":
            if len(frames) != 1:
                raise SerializationError("a msgpack payload has exactly one frame")
            return msgpack_loads(frames[0])
        if name == "bytes":
            if len(frames) != 1:
                raise SerializationError("a bytes payload has exactly one frame")
            if isinstance(frames[0], bytes):
                return frames[0]
            return copied_in_steps(frames[0]) if is_large(frames[0]) else bytes(frames[0])
        if name == "pickle":
            if not allow_pickle:
                raise SerializationError("pickle payloads are not accepted here")
            if not frames:
                raise SerializationError("a pickle payload needs at least one frame")
            if len(frames) == 2 and type(frames[1]) is bytes and is_bytes_out_of_band(frames):
                return frames[1]  # (the value itself: copied into a bytearray and back again,
                # a large one would take the memory of three)
            if not code:
                return _CodelessUnpickler(io.BytesIO(frames[0]),
                                          buffers=map(_writeable, frames[1:])).load()
            if len(frames) > 1 and len(frames[0]) <= _SMALL_HEAD \
                    and stepped_bytes_unpickler is not None \
                    and any(map(is_large, frames[1:])):  # (a large bytes value made in steps)
                return stepped_bytes_unpickler(io.BytesIO(frames[0]),
                                               buffers=_buffers_of(frames)).load()
            return _plain_loads(frames[0], buffers=_buffers_of(frames))
    except SerializationError:
        raise
    except BaseException as exc:  # also SystemExit from a __reduce__/__setstate__:
        # whoever deserializes (a client's I/O thread, a worker's loop) must survive it.
        raise _cannot_deserialize(name, exc) from exc
    raise SerializationError(f"unknown serializer {name!r}")


class _CodelessReader(_CodelessUnpickler):
    def persistent_load(self, pid: Any) -> Any:
        return None  # (a reference its reader resolves, a dataset's future: no code in it)


def holds_code(payload: Payload) -> bool:
    """Whether a ``pickle`` payload holds Python code (a function or a class's methods
    pickled by value): read once without building any, for a value another process put
    where this one reads it and whose tag names another Python. A pickle that fails for
    another reason holds none as far as this says (its reader's own load says why)."""
    if payload.serializer != "pickle" or not payload.frames:
        return False
    try:
        _CodelessReader(io.BytesIO(payload.frames[0]),
                        buffers=map(_writeable, payload.frames[1:])).load()
    except CodeRefused:
        return True
    except BaseException:  # noqa: BLE001 -- as in ``deserialize``: the reader must survive it
        return False
    return False


# The largest pickle, beside a large buffer, read by Python's own unpickler (``deserialize``).
_SMALL_HEAD = 64 * 2**10
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


def deserialize_received(payload: Payload, allow_pickle: bool = True, code: bool = True) -> Any:
    """``deserialize`` of a payload that arrived and that nothing reads again (a value fetched
    from a peer, put by a client, gathered by a client): a large ``bytes`` value is moved out
    of the frame it arrived in rather than copied.

    A large ``bytes`` value's frame is received into the value itself (``framing``), which
    ``deserialize`` hands over. Another large frame arrives in a memory map of its own, and
    a ``bytes`` value made from one (a frame the decoder did not know for a ``bytes``
    value's) is a copy of it; copied in one go, the frame and the
    value stood side by side, a 250 MB value taking 500 MB as it arrived. Moved a step at a
    time, each step of the frame goes back to the system as soon as it is copied; the frame
    holds zeros afterwards, and is closed where it can be (``_moved_out``); the frame is
    copied ``large_bytes.STEP`` bytes at a time."""
    frames = payload.frames
    if (payload.serializer == "pickle" and allow_pickle and _DONTNEED is not None
            and len(frames) == 2 and type(frames[1]) is mmap.mmap
            and is_bytes_out_of_band(frames)):
        return _moved_out(frames[1])
    return deserialize(payload, allow_pickle, code)


def _moved_out(frame: mmap.mmap) -> bytes:
    """The contents of ``frame`` as one ``bytes`` object, written in place, the frame's pages
    given back a step at a time as they are copied."""
    def given_back(start: int, stop: int) -> None:
        frame.madvise(_DONTNEED, start, stop - start)  # type: ignore[arg-type]

    value = copied_in_steps(frame, given_back)
    # Closed so that a second read fails rather than find zeros; unless the transport still
    # holds a view of it for the read that completed it (a message handled in the same call),
    # which lets go of it once that returns. Its pages are given back either way.
    with contextlib.suppress(BufferError):
        frame.close()
    return value


def deserialize_pickle_frame(frame: bytes) -> Any:
    """``deserialize(Payload("pickle", [frame]))``, without the Payload: a client keeps a
    small result as its one pickle frame (a Payload and its list of frames a key were two
    more objects for its cyclic collector to walk)."""
    try:
        return _plain_loads(frame)
    except BaseException as exc:  # (as ``deserialize``)
        raise _cannot_deserialize("pickle", exc) from exc


def _cannot_deserialize(name: str, exc: BaseException) -> SerializationError:
    return SerializationError(f"cannot deserialize {name} payload: {type(exc).__name__}: {exc}")


# The smallest frame received into a ``bytes`` object of its own (smaller ones are copied
# out of the connection's buffer: ``framing.DIRECT_READ_THRESHOLD``).
_RECEIVED_AS_BYTES = 64 * 2**10


def _buffers_of(frames: list[Any]) -> Iterable[Any]:
    """A pickle's out-of-band buffers for its reader: each writeable (``_writeable``), but
    a ``bytes`` frame the pickle passes to ``bytes(...)`` as it is, the value itself (a large
    one was received straight into it: ``framing``)."""
    buffers = frames[1:]
    if not any(type(buffer) is bytes and len(buffer) >= _RECEIVED_AS_BYTES
               for buffer in buffers):
        return map(_writeable, buffers)
    as_they_are = bytes_arguments(frames[0])
    return [buffer if type(buffer) is bytes and at in as_they_are else _writeable(buffer)
            for at, buffer in enumerate(buffers)]


def _writeable(buffer: Any) -> Any:
    """An out-of-band buffer, one that can be written into. numpy and pandas rebuild their
    arrays over it, and an array over a read-only buffer is read-only: a computed result or
    a task's input the user could not write into, which no dask scheduler hands out. Large
    frames arrive in a buffer of their own, writeable; small ones (under 64 KiB) are sliced
    out of the connection's buffer as bytes, and are copied here."""
    if type(buffer) is bytearray:
        return buffer
    return bytearray(buffer) if memoryview(buffer).readonly else buffer


def dumps_function(func: Any) -> Payload:
    return Payload("pickle", [_cloudpickle_dumps()(func, protocol=5)])


@functools.cache
def _cloudpickle_dumps() -> Callable[..., bytes]:
    """cloudpickle's ``dumps``, imported when first needed (a center never needs it, nor a
    worker whose results plain pickle takes) and bound then, as the codecs above are."""
    import cloudpickle

    dumps: Callable[..., bytes] = cloudpickle.dumps
    return dumps


def rebuild_exception(cls: type, args: tuple[Any, ...], state: dict[Any, Any]) -> BaseException:
    """An exception of type ``cls`` with these ``args`` and attributes, without calling its
    ``__init__`` (which may take other arguments than the ``args`` it left)."""
    exc: BaseException = cls.__new__(cls, *args)
    exc.args = args
    if state:
        exc.__dict__.update(state)
    return exc


class _ExceptionParts:
    """Pickles as a call of ``rebuild_exception``: type, args and ``__dict__``."""

    __slots__ = ("exc", "with_state")

    def __init__(self, exc: BaseException, with_state: bool):
        self.exc, self.with_state = exc, with_state

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        state = dict(getattr(self.exc, "__dict__", {})) if self.with_state else {}
        return (rebuild_exception, (type(self.exc), tuple(self.exc.args), state))


def serialize_exception(exc: BaseException) -> tuple[Payload | None, str]:
    """``(payload, "")`` for an exception that survives the trip as itself, else
    ``(None, why not)``.

    Pickle rebuilds an exception as ``type(*args)``, which fails for one whose ``__init__``
    takes other arguments than it passed to ``super().__init__``; such an exception travels
    as its type, ``args`` and attributes instead, set without calling ``__init__``.
    """
    reasons = []
    for candidate in (exc, _ExceptionParts(exc, True), _ExceptionParts(exc, False)):
        try:
            payload = serialize(candidate)
            rebuilt = deserialize(payload)
        except Exception as error:  # noqa: BLE001 -- the next way is tried, the reason kept
            reasons.append(str(error) if isinstance(error, SerializationError)
                           else f"{type(error).__name__}: {error}")
            continue
        if type(rebuilt) is type(exc):
            return payload, ""
        reasons.append(f"it came back as {type(rebuilt).__name__}")
    return None, reasons[0]
