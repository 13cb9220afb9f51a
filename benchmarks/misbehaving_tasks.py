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
spill files of six 40 MB results on that worker (``--memory-limit 200MB``). Every process
started is killed at the end.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time


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


SETTINGS = {"warnings-error": _warnings_error, "socket-timeout": _socket_timeout,
            "chdir-removed": _chdir_removed, "recursion-60": _recursion_limit,
            "gc-disable": _gc_disable, "trace-profile": _trace_and_profile,
            "streams-closed": _standard_streams, "logging-off": _logging_off,
            "excepthook": _thread_excepthook, "asyncio-policy": _asyncio_policy,
            "sigterm-ignored": _ignore_sigterm, "non-daemon-thread": _non_daemon_thread,
            "atexit-sleep": _atexit_sleep, "fork": _fork, "exit": _exit,
            "keyboard-interrupt": _keyboard_interrupt, "os-exit": _os_exit, "umask": _umask}


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
    future = e.submit(SETTINGS[probe], workers=[first], pure=False)
    try:
        outcome = f"returned {future.result(timeout=cap)!r}"
    except BaseException as exc:  # noqa: BLE001 -- the figure is what the task did
        outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
    print(f"{probe}: {outcome} after {time.time() - start:.1f} s")
    if probe == "umask":
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
