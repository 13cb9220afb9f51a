"""Running tasks: load the function and arguments, call, serialize the result -- on threads.

``run_task`` is plain code (tested directly); ``TaskRunner`` owns the threads and hands each
outcome back to the event loop, waking it once per burst of results rather than once per task.
A task may give its thread's slot back while it waits (``secede``): the runner starts a thread
in its place, and when the task takes a slot back (``rejoin``) one thread too many retires
after its task.
"""
from __future__ import annotations

import asyncio
import collections
import faulthandler
import hashlib
import logging
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import CoroutineType
from typing import Any, NoReturn

from dist_protocol import task_context
from dist_protocol.task_context import RunOnThread, TaskContext

from dist_protocol.environment import pickle_tag
from dist_protocol.messages import TaskErred
from dist_protocol.records import builder
from dist_protocol.key_names import shown_key
from dist_protocol.serialize import (Payload, SerializationError, msgpack_arguments_loads,
                                     msgpack_dumps, serialize, serialize_exception,
                                     serialize_plain, substitute)

from . import forks
from .events import (SMALL_VALUE_BYTES, Event, Execute, ExecutionFailed, ExecutionSucceeded,
                     RejoinRequested, Seceded)
from .result_types import pickled_type
from .sigterm_watch import let_this_thread_take_sigterm
from .sizeof import PLAIN_SCALARS, plain_size, sizeof
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
# The size of the stacks of the threads the worker starts, as it began (0: the platform's).
# ``threading.stack_size`` is process-wide: a task that made it small (32 KiB) left every
# pool thread started after it -- a seceded task's replacement -- to overflow its stack at
# the next task that recursed in C (pickling a nested value): SIGSEGV, the worker gone.
_STACK_SIZE = threading.stack_size()
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


def _text(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's own ``__str__`` fails."""
    try:
        return str(exc)
    except BaseException:  # noqa: BLE001 -- user code; the task errs all the same
        return f"<{type(exc).__name__}: str() failed>"


def error_event(key: str, exc: BaseException, context: str = "", own_frame: bool = False,
                run: tuple[float, float] | None = None) -> ExecutionFailed:
    """``own_frame``: the traceback starts in the worker's frame that called the task's
    function, which the user has no use for (the function's frames follow it). ``run``: when
    the failed run started and stopped, if the function ran."""
    try:
        tb = exc.__traceback__
        if own_frame and tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:  # noqa: BLE001 -- a broken __str__ breaks the formatting too
        text = f"{type(exc).__name__}: {_text(exc)}\n"
    message = f"{context}{_text(exc)}" if context else _text(exc)
    try:
        payload, why = serialize_exception(exc)
    except BaseException as error:  # noqa: BLE001 -- its pickling is user code too
        payload, why = None, f"{type(error).__name__}: {_text(error)}"
    if payload is None:  # sent as text only; the client says why it is not the real type
        message += f" (the {type(exc).__name__} itself could not be sent: {why})"
    start, stop = run if run is not None else (None, None)
    return ExecutionFailed(key, TaskErred(key=key, exception_type=type(exc).__name__,
                                          message=_shortened(message),
                                          traceback=_shortened(text), exception=payload,
                                          pickled_with=None if payload is None else PICKLE_TAG,
                                          start=start, stop=stop))


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
                and _text(exc.__cause__)):
            # what unpickling raised, as it would raise locally (unless it says nothing, as
            # msgpack's FormatError: then ours, which names the payload, says more)
            exc = exc.__cause__
        return error_event(key, exc, f"could not load task {shown_key(key)} on the worker: "
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
        return error_event(key, exc, own_frame=True, run=(start, time.time()))
    finally:
        _disarm_dump_later()
        if forks.count != forks_before:
            _leave_forked_copy(key)
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
            payload = serialize(value)
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


def _thread_waits_reader() -> Callable[[], int | None]:
    try:
        from resource import RUSAGE_THREAD, getrusage
    except ImportError:  # RUSAGE_THREAD is Linux's
        return lambda: None
    return lambda: getrusage(RUSAGE_THREAD).ru_nvcsw


# How many times the calling thread has waited (voluntary context switches: on a lock, a
# socket, a sleep), or None where the system does not say.
thread_waits = _thread_waits_reader()


class InlinePolicy:
    """Which functions may run on the event loop's own thread.

    Handing a task to a pool thread and back costs two thread wake-ups (~100 us here), more
    than a trivial task itself. A function that ran in under ``FAST`` seconds its last
    ``NEEDED`` times runs inline. A run over ``SLOW`` seconds sends it back to the pool, where
    it must prove itself fast again; ``STRIKES`` such runs on the loop within ``WINDOW`` runs
    of any function bar it for good, so a function that can block stays on the pool where it
    cannot stall the loop (while a run stalls it, ``StallWatch`` keeps the worker's heartbeats
    going from a thread of its own). One slow run alone does not bar it, nor do slow runs on
    the pool (they stall nothing): on a busy machine a trivial function is now and then
    preempted, or waits for the GIL, for longer than ``SLOW``, and barring it for that would
    send every later run of it through the pool. But no preemption lasts ``STALLED``
    seconds: a run on the loop that long blocked, and bars its function at once, rather than
    after two more such stalls (peers and clients asking the worker for data wait through
    each). Where the system counts a thread's waits (``thread_waits``), a slow run is a
    strike only if the loop's thread waited during it: one taken off the CPU without
    waiting was preempted, not blocked, and on a loaded machine three such runs fall within
    ``WINDOW`` sooner or later in a long map, which then went through the pool to its end.
    """

    FAST = 0.0002
    SLOW = 0.005
    NEEDED = 8
    STRIKES = 3
    STALLED = 1.0
    WINDOW = 1000
    BUDGET = 0.002  # seconds of inline work per pass of the event loop
    LARGEST_KEYED = 2**20  # bytes of a function's pickle: past that, never run on the loop
    TOO_LARGE_TO_KEY = ("pickle too large to key",)  # the key of all those, never recorded
    _BARRED = -1

    def __init__(self, max_functions: int = 1024,
                 waits: Callable[[], int | None] = thread_waits):
        self._waits = waits
        self._waits_before: int | None = None  # the loop thread's, as its inline runs began
        self._fast_runs: collections.OrderedDict[Any, int] = collections.OrderedDict()
        self._slow_runs: dict[Any, collections.deque[int]] = {}  # key -> run numbers
        self._runs = 0  # runs recorded, of all functions
        self._last_function: Payload | None = None  # the pickled function keyed last, its key
        self._last_key: Any = None
        self._max = max_functions

    def function_key(self, function: str | Payload, key: str = "") -> Any:
        """What the policy tells functions apart by: the function's name or pickle; for a
        task of a dask collection (a tuple key, ``"('getitem-<token>', 3, 5)"``), the layer
        its key names. Such a task's pickle is the whole graph node, its key and inputs
        included, so no two are alike: keyed by their pickles, the 400 one-line splits of a
        shuffle would each run through the pool, never proven fast. The tasks of one layer
        apply one function to one partition each."""
        if isinstance(function, str):
            return function
        if key.startswith(("('", '("')):
            return ("layer", key[2:].split(key[1], 1)[0])
        if function is not self._last_function:
            # A map's tasks share one payload: its bytes made (and hashed, by the look-ups
            # that follow) once, not once per task. A large one (a literal of a gigabyte in a
            # dask graph is such a task's whole pickle) is neither copied nor hashed: that
            # held the loop for 8-12 s, past the center's heartbeat limit, and a task that
            # large would stall the loop as long unpickling it there. It runs on the pool.
            # Keyed by a digest, not a copy: the policy remembers 1,024 functions, which a
            # client submitting a new closure of a megabyte each time made a gigabyte.
            first = function.frames[0]
            self._last_function = function
            self._last_key = (self.TOO_LARGE_TO_KEY if len(first) > self.LARGEST_KEYED
                              else hashlib.blake2b(first, digest_size=16).digest())
        return self._last_key

    def allows(self, function_key: Any) -> bool:
        return self._fast_runs.get(function_key, 0) >= self.NEEDED

    def stretch_begins(self) -> None:
        """Runs on the loop begin (a stretch of them, once a pass of the loop), on its own
        thread: how often that thread has waited so far is noted (one system call a
        stretch, none a run), so that a slow run can be told blocked from preempted."""
        self._waits_before = self._waits()

    def _waited(self) -> bool:
        """Whether the loop's thread waited since its stretch of inline runs began or since
        the last slow run; True when that is not known."""
        before = self._waits_before
        if before is None:
            return True
        now = self._waits_before = self._waits()
        return now is None or now != before

    def bar(self, function_key: Any) -> None:
        """Never run this function on the loop again (it waits on the cluster)."""
        self._fast_runs[function_key] = self._BARRED
        self._fast_runs.move_to_end(function_key)
        self._slow_runs.pop(function_key, None)

    def record(self, function_key: Any, duration: float, inline: bool = True) -> None:
        """A run of ``duration`` seconds, on the loop (``inline``) or on a pool thread."""
        self._runs += 1
        if function_key is self.TOO_LARGE_TO_KEY:
            return
        runs = self._fast_runs.get(function_key, 0)
        if runs == self.NEEDED and duration < self.FAST:
            # (proven fast and fast again, as a map's runs are: only its place in the order of
            # use changes)
            self._fast_runs.move_to_end(function_key)
            return
        if runs == self._BARRED:
            return
        if duration < self.FAST:
            runs = min(runs + 1, self.NEEDED)
        elif duration > self.SLOW and inline and (duration > self.STALLED or (
                self._waited() and self._strike(function_key))):
            self._slow_runs.pop(function_key, None)
            runs = self._BARRED
        else:
            runs = 0
        self._fast_runs[function_key] = runs
        self._fast_runs.move_to_end(function_key)
        if len(self._fast_runs) > self._max:
            forgotten, _ = self._fast_runs.popitem(last=False)
            self._slow_runs.pop(forgotten, None)

    def record_failed(self, function_key: Any, error: TaskErred, inline: bool = True) -> None:
        """A run that raised. One that blocked on the loop and then raised (a timeout waiting
        on a service, say) stalled it as long as one that blocked and returned: it counts as
        slow. Not as fast, though: what raising costs the loop past the run (the traceback,
        the exception pickled) is not in its times. (A task that could not be loaded never
        ran: no times.)"""
        if (error.start is not None and error.stop is not None
                and error.stop - error.start >= self.FAST):
            self.record(function_key, error.stop - error.start, inline)

    def _strike(self, function_key: Any) -> bool:
        """A slow run of ``function_key``: whether it is its last chance gone."""
        slow = self._slow_runs.get(function_key)
        if slow is None:
            slow = self._slow_runs[function_key] = collections.deque(maxlen=self.STRIKES)
        slow.append(self._runs)
        if len(slow) == self.STRIKES and self._runs - slow[0] < self.WINDOW:
            del self._slow_runs[function_key]
            return True
        return False


class TaskRunner:
    """``nthreads`` threads running ``Execute`` orders; outcomes go to ``on_done`` on the loop,
    a task's ``secede``/``rejoin`` to ``on_event``. Each task runs with the ``TaskContext``
    that ``context`` makes for its key."""

    def __init__(self, nthreads: int, loop: asyncio.AbstractEventLoop,
                 on_done: Callable[[list], None],
                 on_event: Callable[[Event], None] | None = None,
                 context: Callable[[str], TaskContext] | None = None,
                 before: Callable[[], Any] | None = None,
                 after: Callable[[str, Any], None] | None = None):
        self.loop = loop
        # On the thread, around each task: ``after(key, before())`` once it let go of its values.
        self.before = before
        self.after = after
        self.on_done = on_done
        self.on_event = on_event
        self.context = context
        self.nthreads = nthreads
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._done: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._running = 0  # threads that take tasks from the queue (seceded ones do not)
        self._closed = False
        self._thread_names = iter(range(1 << 62))
        self._local = threading.local()  # .seceded: this thread's task gave its slot back
        self._resume: dict[str, threading.Event] = {}  # seceded tasks waiting to rejoin
        # Tasks submitted whose thread (once one takes them) counts as one of the pool's:
        # a seceded or replaced task's does not.
        self._slotted: set[str] = set()
        for _ in range(nthreads):
            self._start_thread()

    @property
    def threads(self) -> int:
        """Threads taking tasks (a seceded task's thread is not one until it rejoins)."""
        return self._running

    def _start_thread(self) -> None:
        with self._lock:
            self._running += 1
            name = f"dist-task-{next(self._thread_names)}"
        thread = threading.Thread(target=self._work, name=name, daemon=True)
        tasks_size = threading.stack_size(_STACK_SIZE)
        try:
            thread.start()
        finally:
            threading.stack_size(tasks_size)  # (the threads a task starts get what it set)

    def submit(self, instruction: Execute) -> None:
        self._slotted.add(instruction.key)
        self._queue.put(instruction)

    def replace_thread(self, key: str) -> None:
        """The task ``key``, freed while it runs, keeps its thread, which no longer counts
        as one of the pool's: another is started in its place (``ReplaceThread``), and the
        task's ends with the task."""
        with self._lock:
            if self._closed or key not in self._slotted:
                return  # ended, seceded or replaced already
            self._slotted.discard(key)
            self._running -= 1
            replace = self._running < self.nthreads
        if replace:
            self._start_thread()

    # -- secede and rejoin, called by a task on its own thread ------------------------------
    def secede(self, key: str) -> None:
        with self._lock:
            if getattr(self._local, "seceded", False):
                return
            self._local.seceded = True
            if key not in self._slotted:  # replaced already: its slot is given back
                return
            self._slotted.discard(key)
            self._running -= 1
            replace = not self._closed and self._running < self.nthreads
        if replace:
            self._start_thread()
        self._tell(Seceded(key))

    def has_seceded(self) -> bool:
        return getattr(self._local, "seceded", False)

    def rejoin(self, key: str) -> None:
        if not getattr(self._local, "seceded", False):
            return
        resumed = threading.Event()
        with self._lock:
            if self._closed:  # nothing will give it a slot now: let it finish
                self._local.seceded = False
                return
            self._resume[key] = resumed
        self._tell(RejoinRequested(key))
        resumed.wait()
        with self._lock:
            self._local.seceded = False
            self._running += 1
            self._slotted.add(key)

    def resume(self, key: str) -> None:
        """The worker gave the seceded task ``key`` a slot: its thread goes on."""
        with self._lock:
            resumed = self._resume.pop(key, None)
        if resumed is not None:
            resumed.set()

    def _tell(self, event: Event) -> None:
        if self.on_event is not None:
            try:
                self.loop.call_soon_threadsafe(self.on_event, event)
            except RuntimeError:
                pass  # the loop is closed: the worker is shutting down

    def _retire(self, key: str) -> bool:
        """After task ``key``: whether this thread ends (it seceded and never rejoined, it
        was replaced, or a rejoined task left one thread too many)."""
        with self._lock:
            if getattr(self._local, "seceded", False):
                self._local.seceded = False
                self._slotted.discard(key)
                return True
            if key not in self._slotted:  # replaced: another thread took its place
                return True
            self._slotted.discard(key)
            if self._running > self.nthreads:
                self._running -= 1
                return True
            return False

    def _work(self) -> None:
        let_this_thread_take_sigterm()  # (for the processes its tasks start: sigterm_watch)
        while True:
            instruction = self._queue.get()
            if instruction is None:
                return
            if self.context is not None:
                task_context.set_current(self.context(instruction.key))
            key = instruction.key
            started = self._around(self.before)
            try:
                outcome = run_task(instruction)
            except BaseException as exc:  # noqa: BLE001 -- a bug here must not cost the thread
                outcome = ExecutionFailed(instruction.key, TaskErred(
                    key=instruction.key, exception_type=type(exc).__name__,
                    message=f"the worker failed running the task: {_text(exc)}"))
            finally:
                task_context.set_current(None)
            with self._lock:
                wake = not self._done
                self._done.append(outcome)
            if wake:
                try:
                    self.loop.call_soon_threadsafe(self._drain)
                except RuntimeError:
                    return  # the loop is closed: the worker is shutting down
            # An idle thread must not keep the last task's inputs and result alive: a worker
            # paused for memory waits for that memory to be freed, not for a next task.
            del instruction, outcome
            if self.after is not None:
                self._around(self.after, key, started)
            if self._retire(key):
                return

    @staticmethod
    def _around(hook: Callable[..., Any] | None, *args: Any) -> Any:
        if hook is None:
            return None
        try:
            return hook(*args)
        except Exception:  # housekeeping must not cost the thread
            log.exception("around a task")
            return None

    def _drain(self) -> None:
        with self._lock:
            outcomes = list(self._done)
            self._done.clear()
        self.on_done(outcomes)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            threads = self._running
            waiting, self._resume = list(self._resume.values()), {}
        for _ in range(threads):
            self._queue.put(None)
        for resumed in waiting:  # nothing will give them a slot now: let them finish
            resumed.set()
