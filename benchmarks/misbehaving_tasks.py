"""One misbehaving task against a real cluster: what it does to the workers and its future.

    python benchmarks/misbehaving_tasks.py sigterm          # os.kill(os.getpid(), SIGTERM)
    python benchmarks/misbehaving_tasks.py sigterm-nanny    # os.kill(os.getppid(), SIGTERM)
    python benchmarks/misbehaving_tasks.py sigstop          # os.kill(os.getpid(), SIGSTOP)
    python benchmarks/misbehaving_tasks.py dump             # faulthandler dump left armed
    python benchmarks/misbehaving_tasks.py nofile           # RLIMIT_NOFILE lowered
    python benchmarks/misbehaving_tasks.py sigterm --no-nanny --workers 4
    python benchmarks/misbehaving_tasks.py raise-sigterm --no-nanny --workers 4
    python benchmarks/misbehaving_tasks.py umask [--no-nanny]   # then six 40 MB results spill
    python benchmarks/misbehaving_tasks.py warnings-error [--no-nanny]   # or any of SETTINGS
    python benchmarks/misbehaving_tasks.py sync-forever --stop   # cancelled after 3 s
    python benchmarks/misbehaving_tasks.py stdout-closed --stop  # round six's: PROBES of
                                                   # misbehaving_round_six.py
    python benchmarks/misbehaving_tasks.py gil-in-c-12s [--no-nanny]   # round seven's:
                                                   # misbehaving_round_seven.py

Starts a ``dcenter`` and two ``dworker --nanny --nthreads 1`` (from ``PATH``, with the
packages of ``PYTHONPATH``), submits the probe with its future held, and prints its status
once it errs or ``--cap`` seconds pass, the workers' registrations (two at the start; one
more per worker process started again), the nannies still running, and whether a map of 200
runs right afterwards. ``dump`` counts the stack dumps written to the workers' output in the
5 s after the task; ``nofile`` times a second client's gather of a 1 MB result from the worker
whose limit the task lowered. A probe of ``SETTINGS`` changes a process-wide setting in a
task and prints the task's outcome, then whether a map of 200 and a gather of values made on
two workers (one read by a task on the other) run right, and, with ``--stop``, whether the
worker it ran on exits on an operator's SIGTERM; ``umask`` also prints the modes of the
spill files of six 40 MB results on that worker (``--memory-limit 200MB``), as
``environ-clear`` does; a probe of ``FOREVER`` is cancelled after 3 s, and one of ``LATER``
watched that long before the rest. Every process started is killed at the end.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time

import cloudpickle
import misbehaving_round_seven  # (round seven's)
import misbehaving_round_six  # (its probes; this script's folder is on sys.path)

# (the workers cannot import the probes' module: pickled by value, as this script's are)
cloudpickle.register_pickle_by_value(misbehaving_round_six)
cloudpickle.register_pickle_by_value(misbehaving_round_seven)


def terminate_own_worker(x):
    os.kill(os.getpid(), signal.SIGTERM)
    return x


def terminate_own_nanny(x):
    os.kill(os.getppid(), signal.SIGTERM)
    return x


def stop_own_process(x):
    os.kill(os.getpid(), signal.SIGSTOP)
    return x


def arm_a_repeating_dump(x):
    import faulthandler

    faulthandler.dump_traceback_later(0.5, repeat=True)
    return x


def lower_the_open_file_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = len(os.listdir("/proc/self/fd")) - 1  # (less listdir's own)
    resource.setrlimit(resource.RLIMIT_NOFILE, (held, hard))
    return soft


def a_megabyte():
    return b"x" * 2**20


def raise_sigterm_on_its_thread(x):
    signal.raise_signal(signal.SIGTERM)
    return x


KILLERS = {"sigterm": terminate_own_worker, "sigterm-nanny": terminate_own_nanny,
           "sigstop": stop_own_process, "raise-sigterm": raise_sigterm_on_its_thread}


def _warnings_error():
    import warnings

    warnings.simplefilter("error")


def _socket_timeout():
    import socket

    socket.setdefaulttimeout(0.001)


def _chdir_removed():
    import shutil

    folder = tempfile.mkdtemp()
    os.chdir(folder)
    shutil.rmtree(folder)


def _recursion_limit():
    import sys

    sys.setrecursionlimit(60)


def _gc_disable():
    import gc

    gc.disable()


def _trace_and_profile():
    import sys
    import threading

    def tracer(*_):
        return tracer

    sys.settrace(tracer)
    threading.settrace(tracer)
    sys.setprofile(lambda *_: None)


def _standard_streams():
    import sys

    sys.stdout = sys.stderr = None  # type: ignore[assignment]
    os.close(1)
    os.close(2)


def _logging_off():
    import logging

    logging.disable(logging.CRITICAL)
    logging.getLogger().handlers.clear()


def _thread_excepthook():
    import threading

    def failing(args):
        raise RuntimeError("a task's excepthook")

    threading.excepthook = failing


def _asyncio_policy():
    import asyncio

    class Refusing(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self):
            raise RuntimeError("a task's event loop policy")

    asyncio.set_event_loop_policy(Refusing())


def _ignore_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # (ValueError off the main thread)


def _non_daemon_thread():
    import threading

    threading.Thread(target=time.sleep, args=(3600,)).start()


def _atexit_sleep():
    import atexit

    atexit.register(time.sleep, 3600)


def _fork():
    os.fork()  # (the child returns as the task too)


def _exit():
    raise SystemExit(3)


def _keyboard_interrupt():
    raise KeyboardInterrupt


def _os_exit():
    os._exit(3)


def _umask():
    os.umask(0o777)


# Round five: descriptors, signals, the worker's own modules, asyncio, results, processes.
def _center_socket_fd() -> int:
    """The descriptor of this worker's connection to its center (from /proc)."""
    from dist_protocol.task_context import current

    context = current()
    assert context is not None
    port = int(context.center.rsplit(":", 1)[1])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return int(name)
    raise LookupError("no connection to the center")


def _closerange():
    os.closerange(3, 4096)


def _close_center_fd():
    os.close(_center_socket_fd())


def _dup2_center_fd():
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, _center_socket_fd())
    os.close(devnull)


def _alarm():
    signal.alarm(1)


def _itimer_repeating():
    signal.setitimer(signal.ITIMER_REAL, 0.5, 0.5)


def _itimer_prof_storm():
    signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)


def _sigint_handler():
    signal.signal(signal.SIGINT, lambda *_: None)  # (ValueError off the main thread)


def _setsid():
    import subprocess

    os.setsid()
    subprocess.Popen(["sleep", "3600"])


def _setpgrp():
    import subprocess

    os.setpgrp()
    subprocess.Popen(["sleep", "3600"])


def _nice():
    os.nice(19)


def _environ_clear():
    os.environ.clear()


def _rlimit_as():
    import resource

    with open("/proc/self/status") as status:
        vm = next(int(line.split()[1]) for line in status if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, ((vm + 64 * 1024) * 1024, resource.RLIM_INFINITY))


def _rlimit_nofile():
    import resource

    held = len(os.listdir("/proc/self/fd")) - 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (held, resource.getrlimit(
        resource.RLIMIT_NOFILE)[1]))


def _rlimit_nproc():
    import resource

    resource.setrlimit(resource.RLIMIT_NPROC, (1, resource.RLIM_INFINITY))


def _pickle_dumps_none():
    import pickle

    pickle.dumps = None  # type: ignore[assignment]


def _msgpack_deleted():
    import sys

    del sys.modules["msgpack"]


def _socket_none():
    import socket

    socket.socket = None  # type: ignore[assignment,misc]


def _monotonic_zero():
    time.monotonic = lambda: 0.0


def _print_none():
    import builtins

    builtins.print = None  # type: ignore[assignment]


def _switch_interval():
    import sys

    sys.setswitchinterval(10)


def _asyncio_run():
    import asyncio

    async def one():
        await asyncio.sleep(0.01)
        return 1

    return asyncio.run(one())


def _get_event_loop():
    import asyncio

    return repr(asyncio.get_event_loop())


async def _async_blocking():
    time.sleep(2)
    return 2


async def _async_forever():
    while True:
        pass


def _sync_forever():
    while True:
        pass


class _Refusing:
    def __reduce__(self):
        raise RuntimeError("a result that will not pickle")


class _SlowSize:
    def __sizeof__(self):
        time.sleep(60)
        return 100


class _HugeSize:
    def __sizeof__(self):
        return 2**62


class _RaisingDel:
    def __del__(self):
        raise RuntimeError("a finalizer's error")


def _reduce_raises():
    return _Refusing()


def _sizeof_sleeps():
    return _SlowSize()


def _sizeof_huge():
    return _HugeSize()


def _del_raises():
    return _RaisingDel()


def _pool_fork():
    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(2)
    return pool.apply(os.getpid)


def _pool_spawn():
    import multiprocessing

    pool = multiprocessing.get_context("spawn").Pool(2)
    return pool.apply(os.getpid)


def _thread_raises_later():
    import threading

    def later():
        time.sleep(5)
        raise RuntimeError("a task's thread, 5 s after")

    threading.Thread(target=later, daemon=True).start()


def _thread_exits_later():
    import threading

    def later():
        time.sleep(5)
        os._exit(7)

    threading.Thread(target=later, daemon=True).start()


SETTINGS = {"warnings-error": _warnings_error, "socket-timeout": _socket_timeout,
            "chdir-removed": _chdir_removed, "recursion-60": _recursion_limit,
            "gc-disable": _gc_disable, "trace-profile": _trace_and_profile,
            "streams-closed": _standard_streams, "logging-off": _logging_off,
            "excepthook": _thread_excepthook, "asyncio-policy": _asyncio_policy,
            "sigterm-ignored": _ignore_sigterm, "non-daemon-thread": _non_daemon_thread,
            "atexit-sleep": _atexit_sleep, "fork": _fork, "exit": _exit,
            "keyboard-interrupt": _keyboard_interrupt, "os-exit": _os_exit, "umask": _umask,
            "closerange": _closerange, "close-center-fd": _close_center_fd,
            "dup2-center-fd": _dup2_center_fd, "alarm": _alarm,
            "itimer-repeating": _itimer_repeating, "itimer-prof-storm": _itimer_prof_storm,
            "sigint-handler": _sigint_handler, "setsid": _setsid, "setpgrp": _setpgrp,
            "nice": _nice, "environ-clear": _environ_clear, "rlimit-as": _rlimit_as,
            "rlimit-nofile": _rlimit_nofile, "rlimit-nproc": _rlimit_nproc,
            "pickle-dumps-none": _pickle_dumps_none, "msgpack-deleted": _msgpack_deleted,
            "socket-none": _socket_none, "monotonic-zero": _monotonic_zero,
            "print-none": _print_none, "switch-interval": _switch_interval,
            "asyncio-run": _asyncio_run, "get-event-loop": _get_event_loop,
            "async-blocking": _async_blocking, "async-forever": _async_forever,
            "sync-forever": _sync_forever,
            "reduce-raises": _reduce_raises, "sizeof-sleeps": _sizeof_sleeps,
            "sizeof-huge": _sizeof_huge, "del-raises": _del_raises,
            "pool-fork": _pool_fork, "pool-spawn": _pool_spawn,
            "thread-raises-later": _thread_raises_later,
            "thread-exits-later": _thread_exits_later}
SETTINGS.update(misbehaving_round_six.PROBES)
SETTINGS.update(misbehaving_round_seven.PROBES)
AFTER = {**misbehaving_round_six.AFTER, **misbehaving_round_seven.AFTER}
FOREVER = {"async-forever", "sync-forever"}  # cancelled after 3 s
# Probes whose harm, if any, comes seconds after the task: watched that long before the rest.
LATER = {"alarm": 3.0, "itimer-repeating": 3.0, "thread-raises-later": 8.0,
         "thread-exits-later": 8.0}


def forty_megabytes(i):
    return bytes([i]) * (40 * 2**20)


def spill_file_modes(directory):
    import stat

    return sorted({oct(stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode))
                   for folder, _, names in os.walk(directory) for name in names})


def read_elsewhere(value):
    return len(value)


def run_setting(e, probe: str, first: str, cap: float, spill: str) -> None:
    """The probe on the ``first`` worker (the one that spills to ``spill``), then a gather
    across the workers still there."""
    start = time.time()
    pinned = None if probe in misbehaving_round_six.UNPINNED else [first]
    future = e.submit(SETTINGS[probe], workers=pinned, pure=False)
    try:
        outcome = f"returned {future.result(timeout=3 if probe in FOREVER else cap)!r}"
    except BaseException as exc:  # noqa: BLE001 -- the figure is what the task did
        outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
    print(f"{probe}: {outcome} after {time.time() - start:.1f} s")
    if probe in AFTER:
        after = e.submit(AFTER[probe], workers=[first], pure=False)
        try:
            print(f"  the next task there: returned {after.result(timeout=cap)!r}")
        except Exception as exc:  # noqa: BLE001 -- the figure is what the task did
            print(f"  the next task there: {type(exc).__name__}: {str(exc)[:120]}")
    if probe in FOREVER:
        future.cancel()
        print(f"  cancelled: {future.status}")
    time.sleep(LATER.get(probe, 0.0))  # (the window watched)
    if probe in ("umask", "environ-clear"):
        kept = [e.submit(forty_megabytes, i, workers=[first], pure=False) for i in range(6)]
        e.gather(kept, timeout=cap)
        modes = e.submit(spill_file_modes, spill, workers=[first], pure=False).result(
            timeout=cap)
        print(f"  spill file modes after six 40 MB results: {', '.join(modes) or 'none'}")
        del kept
    try:
        here = sorted(e.scheduler_info()["workers"])
        value = e.submit(a_megabyte, workers=[here[0]], pure=False)
        read = e.submit(read_elsewhere, value, workers=[here[-1]], pure=False)
        right = read.result(timeout=cap) == 2**20
        print(f"  a gather across {len(here)} workers: {'right' if right else 'WRONG'}")
    except Exception as exc:  # noqa: BLE001
        print(f"  a gather across workers: {type(exc).__name__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe", choices=[*KILLERS, "dump", "nofile", *SETTINGS])
    parser.add_argument("--cap", type=float, default=40.0, help="seconds to wait at most")
    parser.add_argument("--no-nanny", action="store_true", help="workers without a nanny")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stop", action="store_true",
                        help="then SIGTERM the first worker, as an operator, and time its exit")
    args = parser.parse_args()
    from dist_client import Executor

    logs = tempfile.mkdtemp()
    center = subprocess.Popen(["dcenter", "--port", "0"], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert center.stdout is not None
    address = center.stdout.readline().split()[-1]
    workers = []
    spill = os.path.join(logs, "spill")
    for i in range(args.workers):
        path = os.path.join(logs, f"worker-{i}.log")
        extra = ["--memory-limit", "200MB", "--local-directory", spill] if i == 0 else []
        with open(path, "w") as out:
            workers.append((subprocess.Popen(
                ["dworker", address, "--nthreads", "1",
                 "--no-nanny" if args.no_nanny else "--nanny", *extra], stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True), path))

    def output() -> str:
        return "".join(open(path).read() for _, path in workers)

    try:
        e = Executor(address)
        e.wait_for_workers(args.workers, timeout=30)
        start = time.time()
        if args.probe in SETTINGS:
            first = open(workers[0][1]).read().split("Start worker at ")[1].split()[0]
            run_setting(e, args.probe, first, args.cap, spill)
        elif args.probe in KILLERS:
            future = e.submit(KILLERS[args.probe], 1)
            while future.status != "error" and time.time() - start < args.cap:
                time.sleep(0.1)
            print(f"{args.probe}: {future.status} after {time.time() - start:.1f} s; "
                  f"registrations {output().count('Registered with center')}; nannies "
                  f"running {sum(process.poll() is None for process, _ in workers)}")
            if future.status == "error":
                print(f"  {future.exception()}")
        elif args.probe == "dump":
            e.submit(arm_a_repeating_dump, 1).result(timeout=30)
            time.sleep(5)  # (the window watched)
            print(f"dump: {output().count('Timeout (')} dumps in the 5 s after the task")
        else:
            lowered = e.submit(lower_the_open_file_limit)
            lowered.result(timeout=30)
            [where] = e.who_has([lowered])[lowered.key]
            other = Executor(address)
            try:
                other.submit(a_megabyte, workers=[where]).result(timeout=args.cap)
                print(f"nofile: a new client's gather right after {time.time() - start:.1f} s")
            except Exception as exc:  # noqa: BLE001 -- the figure is what went wrong
                print(f"nofile: a new client's gather: {type(exc).__name__} after "
                      f"{time.time() - start:.1f} s")
        try:
            right = e.gather(e.map(lambda x: x + 1, range(200)), timeout=30) == list(
                range(1, 201))
            print(f"  a map of 200 afterwards: {'right' if right else 'WRONG'}")
        except Exception as exc:  # noqa: BLE001
            print(f"  a map of 200 afterwards: {type(exc).__name__}")
        if args.probe in SETTINGS:
            print(f"  registrations {output().count('Registered with center')}; the workers' "
                  f"logs {len(output().splitlines())} lines ({logs})")
        if args.stop:
            stopped = workers[0][0]
            stopped.send_signal(signal.SIGTERM)  # (the nanny, or the worker without one)
            start = time.time()
            try:
                code = stopped.wait(timeout=args.cap)
                print(f"  an operator's SIGTERM: exited {code} after {time.time() - start:.1f} s")
            except subprocess.TimeoutExpired:
                print(f"  an operator's SIGTERM: still running after {args.cap:g} s")
    finally:
        for process, _ in workers:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.killpg(center.pid, signal.SIGKILL)
        os._exit(0)  # (the executors' threads would wait for a cluster that is gone)


if __name__ == "__main__":
    main()
