"""One misbehaving task against a real cluster: what it does to the workers and its future.

    python benchmarks/misbehaving_tasks.py sigterm          # os.kill(os.getpid(), SIGTERM)
    python benchmarks/misbehaving_tasks.py sigterm-nanny    # os.kill(os.getppid(), SIGTERM)
    python benchmarks/misbehaving_tasks.py sigstop          # os.kill(os.getpid(), SIGSTOP)
    python benchmarks/misbehaving_tasks.py dump             # faulthandler dump left armed
    python benchmarks/misbehaving_tasks.py nofile           # RLIMIT_NOFILE lowered

Starts a ``dcenter`` and two ``dworker --nanny --nthreads 1`` (from ``PATH``, with the
packages of ``PYTHONPATH``), submits the probe with its future held, and prints its status
once it errs or ``--cap`` seconds pass, the workers' registrations (two at the start; one
more per worker process started again), the nannies still running, and whether a map of 200
runs right afterwards. ``dump`` counts the stack dumps written to the workers' output in the
5 s after the task; ``nofile`` times a second client's gather of a 1 MB result from the worker
whose limit the task lowered. Every process started is killed at the end.
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


KILLERS = {"sigterm": terminate_own_worker, "sigterm-nanny": terminate_own_nanny,
           "sigstop": stop_own_process}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe", choices=[*KILLERS, "dump", "nofile"])
    parser.add_argument("--cap", type=float, default=40.0, help="seconds to wait at most")
    args = parser.parse_args()
    from dist_client import Executor

    logs = tempfile.mkdtemp()
    center = subprocess.Popen(["dcenter", "--port", "0"], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert center.stdout is not None
    address = center.stdout.readline().split()[-1]
    workers = []
    for i in range(2):
        path = os.path.join(logs, f"worker-{i}.log")
        with open(path, "w") as out:
            workers.append((subprocess.Popen(
                ["dworker", address, "--nthreads", "1", "--nanny"], stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True), path))

    def output() -> str:
        return "".join(open(path).read() for _, path in workers)

    try:
        e = Executor(address)
        e.wait_for_workers(2, timeout=30)
        start = time.time()
        if args.probe in KILLERS:
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
