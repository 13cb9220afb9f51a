"""Start-up of a dist cluster, phase by phase: from launching ``dcenter`` to the first result.

Each run launches ``dcenter``, and as soon as it says it listens, two ``dworker``s (under their
default nanny) while a client in this process (imported beforehand, as in ``run.py``'s start-up
workload) connects and submits one task. Every line the processes print is timestamped as it
arrives, so the phases are read from the programs' own announcements:

    center listening   ``Start center at``                 (launch -> listening)
    worker registered  ``Registered with center at:``      (each worker, from its launch)
    client connected   ``Executor(address)`` returned
    first result       ``submit(inc, 1).result()`` returned: the figure run.py reports

and, apart from the runs, the CPU time of a bare interpreter and of importing each program's
modules, which is most of each phase.

    python benchmarks/startup.py [--runs 5]

Results: ``benchmarks/results/startup.json`` (medians and every sample).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
IMPORTS = {"bare interpreter": "pass", "dcenter modules": "import dist_center.cli",
           "dworker modules": "import dist_worker.cli", "client modules": "import dist_client"}


class Watched:
    """A process whose output lines are timestamped as they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append((time.perf_counter(), line.rstrip()))
                self.changed.notify_all()
        with self.changed:
            self.lines.append((time.perf_counter(), ""))  # end of output
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60) -> tuple[float, re.Match]:
        deadline = time.monotonic() + timeout
        seen = 0
        with self.changed:
            while True:
                for when, line in self.lines[seen:]:
                    match = re.search(pattern, line)
                    if match:
                        return when, match
                seen = len(self.lines)
                if self.proc.poll() is not None and self.lines and self.lines[-1][1] == "":
                    raise RuntimeError(f"{self.proc.args[0]} exited: "
                                       f"{[line for _, line in self.lines[-5:]]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no {pattern!r} within {timeout} s")
                self.changed.wait(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def one_run(env: dict[str, str], dcenter: str, dworker: str) -> dict[str, float]:
    import bench_tasks as t
    from dist_client import Executor

    procs: list[Watched] = []
    try:
        t0 = time.perf_counter()
        center = Watched([dcenter, "--host", "127.0.0.1", "--port", "0", "--dashboard-port", "0"],
                         env)
        procs.append(center)
        listening, match = center.wait_for(r"Start center at (\S+)")
        address = match.group(1)
        workers = [Watched([dworker, address, "--nthreads", "1", "--name", f"w{i}"], env)
                   for i in range(2)]
        procs += workers
        ex = Executor(address)
        connected = time.perf_counter()
        assert ex.submit(t.inc, 1).result() == 2
        first = time.perf_counter()
        registered = [w.wait_for("Registered with center at")[0] - w.started for w in workers]
        ex.close()
        return {"center_listening_s": listening - t0,
                "worker_registered_s": max(registered),
                "client_connected_s": connected - t0,
                "first_result_s": first - t0}
    finally:
        for proc in reversed(procs):
            proc.stop()


def import_cpu(statement: str, env: dict[str, str], repeat: int = 5) -> float:
    """Median CPU seconds (user + system) of a fresh interpreter running ``statement``."""
    samples = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", statement], env=env, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dcenter", default=str(BIN / "dcenter"), help="the program to start")
    parser.add_argument("--dworker", default=str(BIN / "dworker"), help="the program to start")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    sys.path.insert(0, str(HERE))
    import numpy  # noqa: F401 -- as run.py's start-up workload: imports before the clock

    runs = [one_run(env, args.dcenter, args.dworker) for _ in range(args.runs)]
    phases = {name: {"median": statistics.median(run[name] for run in runs),
                     "runs": [run[name] for run in runs]} for name in runs[0]}
    imports = {name: import_cpu(statement, env) for name, statement in IMPORTS.items()}
    for name, phase in phases.items():
        print(f"{name:22} {phase['median']:6.3f} s   (runs: "
              f"{', '.join(f'{v:.3f}' for v in phase['runs'])})")
    for name, seconds in imports.items():
        print(f"CPU, {name:17} {seconds:6.3f} s")
    doc = {"phases": phases, "import_cpu_s": imports,
           "load_average": os.getloadavg(), "dcenter": args.dcenter, "dworker": args.dworker}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
