"""Running a task: load the function and arguments, call, serialize the result.

``run_task`` is plain code (tested directly), called on a pool thread by ``task_runner`` or
on the loop's own thread for a function ``inline_policy`` found fast.
"""
from __future__ import annotations

import asyncio
import collections
import faulthandler
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import CoroutineType, TracebackType
from typing import Any, NoReturn

from dist_protocol import task_context
from dist_protocol.task_context import RunOnThread, is_reschedule

from dist_protocol.environment import describe, local_environment, pickle_tag
from dist_protocol.messages import TaskErred
from dist_protocol.records import builder
from dist_protocol.key_names import shown_key
from dist_protocol.serialize import (Payload, SerializationError, msgpack_arguments_loads,
                                     msgpack_dumps, serialize, serialize_exception,
                                     serialize_plain, substitute)

from . import forks
from .events import (SMALL_VALUE_BYTES, Execute, ExecutionFailed, ExecutionSucceeded)
from .result_types import pickled_type
from .sizeof import PLAIN_SCALARS, plain_size, sizeof
from .standard_streams import put_back_closed_streams, streams_changed
from .unpickling import import_module, unpickle

# Made once a task: built changing its class once, not twice (``records.builder``).
execution_succeeded = builder(ExecutionSucceeded)

# Serialized results are kept beside the value (to answer gathers without re-pickling) when they
# are this small in all. Not larger ones, even when their out-of-band buffers share the value's
# memory: the kept buffers would keep that memory alive after the value is spilled to disk.
log = logging.getLogger("dist.worker")
KEEP_SERIALIZED_BELOW = 64 * 1024
# A result that pickling cannot fail on (``plain_size``) of at least this many bytes is pickled
# only when a peer or a client asks for it: below, it may be small enough to go along with
# task-finished, which needs its pickle now (an estimate can be several times the pickle:
# strings kept as Python objects are sized with their object headers).
PICKLED_WHEN_ASKED_FROM = 16 * 1024
_FUNCTION_CACHE_SIZE = 512
# The pickles of the functions kept, in all, and the largest kept: a client submitting a new
# closure each time (a lambda holding a megabyte, ``pure=False``) had the worker keep each
# pickle and the function made from it, 3 MB a task, up to 512 of them (benchmarks/README.md,
# "Long-lived servers, round four"). A larger function is unpickled at each task, as dask
# caches only functions pickled into less than 100 kB; a map's tasks still share one load.
_FUNCTION_CACHE_BYTES = 16 * 2**20
_LARGEST_CACHED_FUNCTION = 2**20
# What a task may change of the interpreter that would reach the tasks after it is put back
# when it ends: the recursion limit, the process's, if lowered (to make its own recursion
# fail early, say: every later task that recursed a little, unpickled a nested value or
# imported a package failed with RecursionError; raising it stays allowed, as a task that
# needs deep recursion does), and its thread's trace and profile functions (a debugger or
# a cProfile left enabled: every later task on the thread traced, the event loop's own work
# too for an inline task, and whatever the tracer keeps growing); and the interpreter's switch
# interval, if raised: at ``sys.setswitchinterval(10)`` a CPU-bound task after it kept the
# event loop's thread from the interpreter lock for up to 10 s at a time, and the center
# removed the worker as silent.
_RECURSION_LIMIT = sys.getrecursionlimit()
_SWITCH_INTERVAL = sys.getswitchinterval()
_recursion_limit, _gettrace, _getprofile = sys.getrecursionlimit, sys.gettrace, sys.getprofile
_switch_interval = sys.getswitchinterval
# From Python 3.12 cProfile profiles the whole process through sys.monitoring's profiler
# tool, not through the thread's profile function: a task that leaves one enabled holds that
# tool (named "cProfile") after it ends.
_monitoring: Any = getattr(sys, "monitoring", None)
_PROFILER_TOOL: int = _monitoring.PROFILER_ID if _monitoring is not None else 2
_profiler_tool: Callable[[int], str | None] = (
    _monitoring.get_tool if _monitoring is not None else (lambda _tool: None))
# A dump of every thread's stack that a task armed (``faulthandler.dump_traceback_later``,
# with ``repeat=True`` or a timeout past its end) is disarmed when a task ends: left armed, it
# wrote the stacks into the worker's log every period for the process's life. One C call a
# task, that returns at once when nothing is armed (benchmarks/README.md, round three of
# misbehaving tasks). A task that wants a dump of its own hang gets it while it runs, unless
# a task on another thread ends first: there is one such dump a process.
_disarm_dump_later = faulthandler.cancel_dump_traceback_later
_functions: collections.OrderedDict[Any, Callable] = collections.OrderedDict()
_functions_bytes = 0  # the lengths of ``_functions``' pickles, in all
_functions_lock = threading.Lock()


def import_function(path: str) -> Callable:
    """``"package.module:qualified.name"`` -> the object it names."""
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"function path {path!r} must look like 'module:function'")
    obj: Any = import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{path} is not callable")
    return obj


# The function loaded last, by the object it was loaded from: a map's tasks share one (a
# batch's column block decodes it once), which then costs no lookup under the lock.
_last_loaded: tuple[Any, Callable | None] = (None, None)


def load_function(function: str | Payload, key: str = "") -> Callable:
    """The task's function; ``key``, the task's, tells a dask collection's task apart."""
    global _last_loaded
    last, func = _last_loaded  # (one read: another thread may replace it meanwhile)
    if last is function and func is not None:
        return func
    if key.startswith(("('", '("')) and not isinstance(function, str):
        # A task of a dask collection (a tuple key): its pickle is the whole graph node, its
        # key and inputs included, which no other task repeats. Cached, it would only copy
        # its bytes for the look-up and push out functions that do repeat.
        return _callable(unpickle(function))
    func = _load_function(function)
    _last_loaded = (function, func)
    return func


def _callable(func: Any) -> Callable:
    if not callable(func):
        raise TypeError(f"the task's function is a {type(func).__name__}, not callable")
    return func


def _load_function(function: str | Payload) -> Callable:
    global _functions_bytes
    if not isinstance(function, str) and (
            len(function.frames) > 1 or len(function.frames[0]) > _LARGEST_CACHED_FUNCTION):
        # Its out-of-band buffers (an array's data) are not in its first frame: two such
        # pickles alike there may differ. None repeats often enough to cache it.
        return _callable(unpickle(function))
    cache_key = function if isinstance(function, str) else bytes(function.frames[0])
    with _functions_lock:
        func = _functions.get(cache_key)
        if func is not None:
            _functions.move_to_end(cache_key)
            return func
    func = _callable(import_function(function) if isinstance(function, str)
                     else unpickle(function))
    with _functions_lock:
        if cache_key not in _functions:
            _functions_bytes += len(cache_key)
        _functions[cache_key] = func
        while len(_functions) > _FUNCTION_CACHE_SIZE or _functions_bytes > _FUNCTION_CACHE_BYTES:
            forgotten, _ = _functions.popitem(last=False)
            _functions_bytes -= len(forgotten)
    return func


def load_arguments(args: Payload | None, inputs: dict[str, Any]) -> tuple[tuple, dict]:
    if args is None:
        return (), {}
    if args.serializer == "msgpack" and len(args.frames) == 1:
        loaded = msgpack_arguments_loads(args.frames[0])
    else:
        loaded = unpickle(args)
    if not isinstance(loaded, (list, tuple)) or len(loaded) != 2:
        raise ValueError("task arguments must be a pair [args, kwargs]")
    positional, keywords = loaded
    if keywords is None:
        keywords = {}
    if not isinstance(positional, (list, tuple)) or not isinstance(keywords, dict):
        raise ValueError("task arguments must be [list of args, map of kwargs]")
    # msgpack arguments come from clients in any language, whose references the worker must
    # check even without deps; pickled ones from this package's client have deps for them.
    if inputs or args.serializer == "msgpack":
        positional, keywords = substitute(tuple(positional), inputs), substitute(keywords, inputs)
    return tuple(positional), keywords


# The most of an error's message and of its traceback that the text of a ``task-erred`` keeps
# (each): the text travels in the message batch, which the center decodes on its event loop,
# so an exception whose ``str`` is 100 MB (bytes in its args: four characters a byte) stalled
# the center for seconds, and every worker went silent for it. The pickled exception, a frame
# of its own, is sent whole: the client rebuilds the exception with its whole message.
MAX_ERROR_TEXT = 100_000
# Said with each pickled exception: a client on another Python must not build its code.
PICKLE_TAG = pickle_tag()


def _shortened(text: str) -> str:
    """``text``, or its first and last parts when it is longer than ``MAX_ERROR_TEXT``."""
    if len(text) <= MAX_ERROR_TEXT:
        return text
    half = MAX_ERROR_TEXT // 2
    return (f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n"
            f"{text[-half:]}")


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's own ``__str__`` fails."""
    try:
        return str(exc)
    except BaseException:  # noqa: BLE001 -- user code; the task errs all the same
        return f"<{type(exc).__name__}: str() failed>"


# The most frames of a task's traceback that are formatted, the first and the last halves (more
# than a recursion under the usual limit of 1,000 has, which is formatted whole): a
# RecursionError under ``sys.setrecursionlimit(10**6)`` has a million, and formatting them
# all (to a few lines: the repeats are folded) took 15-25 s of the task's thread, the error
# reaching the user that much later.
MAX_TRACEBACK_FRAMES = 2_000


def _formatted(exc: BaseException, tb: TracebackType | None) -> str:
    depth, walker = 0, tb
    while walker is not None and depth <= MAX_TRACEBACK_FRAMES:
        depth, walker = depth + 1, walker.tb_next
    if walker is None:
        return "".join(traceback.format_exception(type(exc), exc, tb))
    while walker is not None:  # (a walk of a million frames: a tenth of a second)
        depth, walker = depth + 1, walker.tb_next
    half = MAX_TRACEBACK_FRAMES // 2
    last = tb
    for _ in range(depth - half):
        assert last is not None
        last = last.tb_next
    return "".join(["Traceback (most recent call last):\n",
                    *traceback.format_list(traceback.extract_tb(tb, limit=half)),
                    f"  ... ({depth - 2 * half} frames left out) ...\n",
                    *traceback.format_list(traceback.extract_tb(last)),
                    *traceback.format_exception_only(type(exc), exc)])


def error_event(key: str, exc: BaseException, context: str = "", own_frame: bool = False,
                run: tuple[float, float] | None = None,
                reschedule: bool = False) -> ExecutionFailed:
    """``own_frame``: the traceback starts in the worker's frame that called the task's
    function, which the user has no use for (the function's frames follow it). ``run``: when
    the failed run started and stopped, if the function ran. ``reschedule``: the function
    raised ``Reschedule``; the error stays whole, for a center that does not reschedule."""
    try:
        tb = exc.__traceback__
        if own_frame and tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        text = _formatted(exc, tb)
    except BaseException:  # noqa: BLE001 -- a broken __str__ breaks the formatting too
        text = f"{type(exc).__name__}: {exception_text(exc)}\n"
    message = f"{context}{exception_text(exc)}" if context else exception_text(exc)
    try:
        payload, why = serialize_exception(exc)
    except BaseException as error:  # noqa: BLE001 -- its pickling is user code too
        payload, why = None, f"{type(error).__name__}: {exception_text(error)}"
    if payload is None:  # sent as text only; the client says why it is not the real type
        message += f" (the {type(exc).__name__} itself could not be sent: {why})"
    start, stop = run if run is not None else (None, None)
    return ExecutionFailed(key, TaskErred(key=key, exception_type=type(exc).__name__,
                                          message=_shortened(message),
                                          traceback=_shortened(text), exception=payload,
                                          pickled_with=None if payload is None else PICKLE_TAG,
                                          start=start, stop=stop, reschedule=reschedule))


# User code may raise any BaseException -- ``sys.exit()`` is SystemExit, a library may raise
# KeyboardInterrupt or GeneratorExit, users derive their own from BaseException. Each is that
# task's error: let through, it would end the pool thread with the task forever "executing".
def run_task(instruction: Execute) -> ExecutionSucceeded | ExecutionFailed:
    key = instruction.key
    try:
        func = load_function(instruction.function, key)
        args, kwargs = load_arguments(instruction.args, instruction.inputs)
    except BaseException as exc:  # noqa: BLE001 -- any failure to load is the task's error
        if isinstance(exc, SerializationError) and isinstance(exc.__cause__, RunOnThread):
            # Unpickling an argument connects to the cluster (a future inside an object):
            # on the event loop that must not block, so the task runs on a thread instead.
            raise exc.__cause__ from None
        if (isinstance(exc, SerializationError) and isinstance(exc.__cause__, Exception)
                and exception_text(exc.__cause__)):
            # what unpickling raised, as it would raise locally (unless it says nothing, as
            # msgpack's FormatError: then ours, which names the payload, says more)
            exc = exc.__cause__
        # (the worker's Python named: a module or a pickle another Python's client made may
        # be what this one lacks)
        return error_event(key, exc, f"could not load task {shown_key(key)} on the worker "
                                     f"({describe(local_environment())}): "
                                     f"{type(exc).__name__}: ")
    start = time.time()
    forks_before = forks.count
    # (the profiler tool only where there is one: before Python 3.12 a call for nothing,
    # twice a task)
    monitoring = _monitoring is not None
    trace, profile = _gettrace(), _getprofile()
    tool = _profiler_tool(_PROFILER_TOOL) if monitoring else None
    try:
        value = func(*args, **kwargs)
        if isinstance(value, CoroutineType):
            value = _run_coroutine(value)
    except RunOnThread:
        raise  # run on the event loop, it must wait: the worker runs it again on a thread
    except BaseException as exc:  # noqa: BLE001 -- the task's own error travels to the client
        return error_event(key, exc, own_frame=True, run=(start, time.time()),
                           reschedule=is_reschedule(exc))
    finally:
        _disarm_dump_later()
        if forks.count != forks_before:
            _leave_forked_copy(key)
        if streams_changed():
            put_back_closed_streams(key)
        if (_gettrace() is not trace or _getprofile() is not profile
                or _recursion_limit() < _RECURSION_LIMIT
                or _switch_interval() > _SWITCH_INTERVAL
                or (monitoring and _profiler_tool(_PROFILER_TOOL) != tool)):
            _put_back_interpreter(trace, profile, tool)
    stop = time.time()
    kind = type(value)
    plain = kind in PLAIN_SCALARS
    # (a number or a short string, as most small results are: sized without the calls)
    size = sys.getsizeof(value) if plain else plain_size(value)
    if size is not None and size >= PICKLED_WHEN_ASKED_FROM:
        # Data that pickles for sure: pickled only for a peer or a client that asks (a dask
        # shuffle's groups, and the half of its pieces read where they were made, never leave).
        return execution_succeeded(key, value, size, kind.__name__, start, stop, None,
                                   type_pickled=pickled_type(kind))
    try:
        # (a number or a short string pickles at once: no serializer to choose, no module
        # its pickle could name)
        if plain:
            payload = serialize_plain(value)
            nbytes = len(payload.frames[0])  # (its one frame, bytes: no property call)
        else:
            payload = (serialize(value) if _recursion_limit() <= _RECURSION_LIMIT
                       else _serialize_within_limit(value))
            nbytes = payload.nbytes
    except BaseException as exc:  # noqa: BLE001
        return error_event(key, exc, f"the result of {shown_key(key)} ({kind.__name__}) cannot be "
                                     "serialized, so no one could fetch it: ", run=(start, stop))
    keep = payload if nbytes < KEEP_SERIALIZED_BELOW else None
    small = (small_msgpack(value) if instruction.value_msgpack
             and nbytes <= SMALL_VALUE_BYTES else None)
    # (weighed here, on the task's thread: see ``ExecutionSucceeded.weight``)
    return execution_succeeded(key, value, nbytes, kind.__name__, start, stop, keep, "", small,
                               pickled_type(kind), None if plain else sizeof(value, nbytes))


def _serialize_within_limit(value: Any) -> Payload:
    """``serialize`` under the recursion limit the worker started with, for a task that
    raised it: pickling recurses in C, and at ``sys.setrecursionlimit(10**6)`` a result
    nested a million deep overflowed the thread's stack (SIGSEGV, the worker gone) where at
    the usual limit it raises, and the task errs. The task's limit stays for the tasks after
    it (see ``_RECURSION_LIMIT``)."""
    raised = _recursion_limit()
    sys.setrecursionlimit(_RECURSION_LIMIT)
    try:
        return serialize(value)
    finally:
        sys.setrecursionlimit(raised)


def _put_back_interpreter(trace: Any, profile: Any, tool: str | None) -> None:
    if tool is None and _profiler_tool(_PROFILER_TOOL) is not None:
        _disable_monitoring_profiler()
    if sys.gettrace() is not trace:
        sys.settrace(trace)
    left = sys.getprofile()
    if left is not profile:
        lsprof = sys.modules.get("_lsprof")
        if lsprof is not None and isinstance(left, lsprof.Profiler):
            # (cProfile's: destroyed while enabled, it uninstalls whatever is installed then)
            left.disable()
        sys.setprofile(profile)
    if sys.getrecursionlimit() < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)
    if sys.getswitchinterval() > _SWITCH_INTERVAL:
        sys.setswitchinterval(_SWITCH_INTERVAL)


def _disable_monitoring_profiler() -> None:
    """Disable the cProfile profiler a task left holding sys.monitoring's profiler tool,
    found through the callback it registered (a method of the profiler); a tool of another
    kind is left as it is."""
    start = _monitoring.events.PY_START
    callback = _monitoring.register_callback(_PROFILER_TOOL, start, None)
    _monitoring.register_callback(_PROFILER_TOOL, start, callback)
    lsprof = sys.modules.get("_lsprof")
    profiler = getattr(callback, "__self__", None)
    if lsprof is not None and isinstance(profiler, lsprof.Profiler):
        profiler.disable()


def _run_coroutine(coroutine: Any) -> Any:
    """The value of an ``async def`` task, as dask's workers give it rather than the coroutine
    object. It runs to its end on an event loop of its own, on the task's pool thread (never
    on the worker's loop: it may await anything, for any time, and the worker's connections
    must not wait for it)."""
    context = task_context.current()
    if context is not None and context.on_loop:
        coroutine.close()  # (never started: closed, so that no "never awaited" warning shows)
        context.leave_loop("an async def task")
    return asyncio.run(coroutine)


def small_msgpack(value: Any) -> Payload | None:
    """A small value as msgpack as well, which the center passes on to clients in languages
    that read no pickle; None when msgpack cannot carry it in SMALL_VALUE_BYTES."""
    try:
        packed = msgpack_dumps(value)
    except Exception:  # noqa: BLE001 -- whatever msgpack cannot carry: the client gathers it
        return None
    return Payload("msgpack", [packed]) if len(packed) <= SMALL_VALUE_BYTES else None


def hide_loop(running: asyncio.AbstractEventLoop | None = None
              ) -> asyncio.AbstractEventLoop | None:
    """On the worker's event loop thread, before tasks run there (``run_task``): the loop out
    of their sight, as it is from a pool thread -- a task that asks asyncio for the current
    loop gets none (and cannot stop the worker's), and ``asyncio.run()`` inside it runs as it
    would on a thread rather than fail because a loop is running. The loop, for
    ``show_loop`` once they ran (only code that does not ask asyncio for it runs between).
    ``running``: the running loop, when the caller knows it -- asking asyncio costs a system
    call (it checks the process id), about 1.5 us here, on every lone task."""
    loop = running if running is not None else asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    asyncio.set_event_loop(None)
    return loop


def hide_running_loop(running: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    """``hide_loop(running)`` where the thread's current loop is already none (an earlier
    ``hide_loop`` on this thread): only the running loop is hidden. Setting the thread's loop
    to none again, through the policy, cost 4,500 instructions, as much as the rest of the
    hiding and showing together, on every lone task. A loop a task itself makes current
    stays for the next tasks of the thread, as it does on a pool thread."""
    asyncio._set_running_loop(None)
    return running


def show_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """The loop back in sight, as the running loop: all that code on the loop's thread asks
    asyncio for while it runs. It is not made the thread's current loop again (as a pool
    thread's, the thread's is none after a task), which cost a task as much again as its
    hiding: four calls down through the policy."""
    asyncio._set_running_loop(loop)


def run_task_on_loop(instruction: Execute) -> ExecutionSucceeded | ExecutionFailed:
    """``run_task`` on the worker's event loop thread, the loop hidden (``hide_loop``)."""
    loop = hide_loop()
    try:
        return run_task(instruction)
    finally:
        show_loop(loop)


def _leave_forked_copy(key: str) -> NoReturn:
    """In a process the task forked (``os.fork()`` without exec), which came back from the
    task's function into the worker's code: a copy of the worker with one thread, the loop's
    gone, which would wait forever for a next task (or, forked on the loop, serve the worker's
    connections beside it). It exits, as a forked child must."""
    try:
        print(f"dworker: a process forked by task {key} returned from it into the worker; it "
              "exits (a forked child should end with os._exit)", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 -- the task may have closed stderr
        pass
    os._exit(0)
