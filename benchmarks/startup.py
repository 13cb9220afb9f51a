"""Start-up of a dist cluster, phase by phase: from launching ``dcenter`` to the first result.

Each run launches ``dcenter``, and as soon as it says it listens, two ``dworker``s (under their
default nanny) while a client in this process (imported beforehand, as in ``run.py``'s start-up
workload) connects and submits one task: the time from launching the center to that result is
the figure ``run.py`` reports.

Probed runs add, from an audit hook every started interpreter loads (``startup_probe/``; the
programs are not changed), the moment and the CPU time so far of each process's steps, and so
a breakdown of the wall time and of the CPU time of every phase:

    center  interpreter start; re-exec (the allocator: a second interpreter start); from then
            until it binds its port (imports, the command line); until it says ``Start center
            at``
    worker  interpreter start; imports and option parsing (the nanny's) until it forks the
            worker; the fork; the worker's set-up until it binds its port and until it says
            ``Start worker at``; from then to ``Registered with center at`` (registration)
    client  connected (``Executor(address)`` returned); from then to the first result

and the CPU time the center and the workers (nannies and workers) had used at the first result.

Apart from the runs, ``-X importtime`` of each program's modules, summed by group (dist's
packages, typer, asyncio, the rest of the standard library, other third-party packages), and
the CPU time of a bare interpreter. Plain runs (no probe) give the headline figure unperturbed.

    python benchmarks/startup.py [--runs 5] [--plain-runs 5]

Results: ``benchmarks/results/startup.json`` (medians and every sample, load average before and
after). dist's packages are byte-compiled first, as an installed user has them.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PROBE = HERE / "startup_probe"
IMPORTS = {"dcenter": "import dist_center.cli, dist_center.server",
           "dworker": "import dist_worker.cli",
           "client": "import dist_client"}
GROUPS = ("dist_protocol", "dist_center", "dist_worker", "dist_client", "typer", "asyncio")


class Watched:
    """A process whose output lines are timestamped (wall clock) as they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.started = time.time()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append((time.time(), line.rstrip()))
                self.changed.notify_all()
        with self.changed:
            self.lines.append((time.time(), ""))  # end of output
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


def read_probe(path: str) -> dict[int, list[tuple[float, float, str]]]:
    """The probe's events by pid: (wall clock, CPU seconds so far, event)."""
    events: dict[int, list[tuple[float, float, str]]] = collections.defaultdict(list)
    for line in Path(path).read_text().splitlines():
        pid, wall, cpu, event = line.split(" ", 3)
        events[int(pid)].append((float(wall), float(cpu), event))
    return events


def first(events, prefix: str, after: float = 0.0):
    return next(((wall, cpu) for wall, cpu, event in events
                 if event.startswith(prefix) and wall >= after), None)


def span(phases: dict, name: str, start, end) -> None:
    """Record the wall and CPU time between two (wall, cpu) points of one process."""
    if start is not None and end is not None:
        phases[f"{name}_s"] = end[0] - start[0]
        phases[f"{name}_cpu_s"] = end[1] - start[1]


def breakdown(events, center_pid: int, worker_pids: list[int], launched: dict[int, float],
              lines: dict[str, float]) -> dict[str, float]:
    """Wall and CPU time per phase, from the probe's events (workers: the slower one's)."""
    phases: dict[str, float] = {}
    center = events[center_pid]
    starts = [(wall, cpu) for wall, cpu, event in center if event.startswith("interpreter")]
    launch = (launched[center_pid], 0.0)
    span(phases, "center_interpreter", launch, starts[0])
    if len(starts) > 1:
        span(phases, "center_reexec", starts[0], starts[1])
    bind = first(center, "bind")
    span(phases, "center_until_bind", starts[-1], bind)
    if bind is not None:
        phases["center_bind_to_announced_s"] = lines["center_listening"] - bind[0]
    per_worker = []
    for nanny in worker_pids:
        w: dict[str, float] = {}
        nanny_events = events[nanny]
        interp = first(nanny_events, "interpreter")
        span(w, "worker_interpreter", (launched[nanny], 0.0), interp)
        fork = first(nanny_events, "fork")
        span(w, "worker_until_fork", interp, fork)
        child = next((pid for pid, evs in events.items()
                      if evs and evs[0][2] == f"forked {nanny}"), None)
        if child is not None and fork is not None:
            forked = events[child][0][:2]
            w["worker_fork_s"] = forked[0] - fork[0]
            span(w, "worker_setup_until_bind", forked, first(events[child], "bind"))
            w["worker_forked_to_announced_s"] = lines[f"worker {nanny}"] - forked[0]
        w["worker_registration_s"] = lines[f"registered {nanny}"] - lines[f"worker {nanny}"]
        per_worker.append(w)
    for key in per_worker[0]:
        values = [w[key] for w in per_worker if key in w]
        phases[key] = max(values)
    return phases


def one_run(env: dict[str, str], dcenter: str, dworker: str, probe: bool) -> dict[str, float]:
    import bench_tasks as t
    from dist_client import Executor

    env = dict(env)
    probe_file = None
    if probe:
        handle, probe_file = tempfile.mkstemp(prefix="dist-startup-probe-")
        os.close(handle)
        env["DIST_STARTUP_PROBE"] = probe_file
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), env.get("PYTHONPATH")]))
    procs: list[Watched] = []
    try:
        t0 = time.time()
        center = Watched([dcenter, "--host", "127.0.0.1", "--port", "0", "--dashboard-port", "0"],
                         env)
        procs.append(center)
        listening, match = center.wait_for(r"Start center at (\S+)")
        address = match.group(1)
        workers = [Watched([dworker, address, "--nthreads", "1", "--name", f"w{i}"], env)
                   for i in range(2)]
        procs += workers
        ex = Executor(address)
        connected = time.time()
        assert ex.submit(t.inc, 1).result() == 2
        done = time.time()
        registered = {w.proc.pid: w.wait_for("Registered with center at")[0] for w in workers}
        announced = {w.proc.pid: w.wait_for("Start worker at")[0] for w in workers}
        cpu = {"center_cpu_at_result_s": process_cpu(center.proc.pid),
               "workers_cpu_at_result_s": sum(process_cpu(w.proc.pid, children=True)
                                              for w in workers)}
        ex.close()
        out = {"center_listening_s": listening - t0,
               "worker_registered_s": max(registered.values()) - t0,
               "client_connected_s": connected - t0,
               "client_connected_to_result_s": done - connected,
               "first_result_s": done - t0, **cpu}
        if probe_file is not None:
            lines = {"center_listening": listening,
                     **{f"registered {pid}": when for pid, when in registered.items()},
                     **{f"worker {pid}": when for pid, when in announced.items()}}
            launched = {p.proc.pid: p.started for p in procs}
            out.update(breakdown(read_probe(probe_file), center.proc.pid,
                                 [w.proc.pid for w in workers], launched, lines))
        return out
    finally:
        for proc in reversed(procs):
            proc.stop()
        if probe_file is not None:
            os.unlink(probe_file)


def process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system) a running process has used (with its children: the nanny
    and the worker it forked)."""
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)] if children else [proc]
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def children_cpu(argv: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def group_of(module: str) -> str:
    top = module.split(".")[0]
    if top in GROUPS:
        return top
    if top in sys.stdlib_module_names or top.startswith("_"):
        return "stdlib (other)"
    return "third-party (other)"


def import_groups(statement: str, env: dict[str, str], repeat: int) -> dict[str, float]:
    """Seconds of ``-X importtime`` self time per group (a wall-clock measure: the least of the
    samples, the least disturbed by other work) and the CPU time of the whole process."""
    samples: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], env=env,
                             check=True, capture_output=True, text=True).stderr
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        totals: dict[str, float] = collections.defaultdict(float)
        for line in err.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                self_us, _, name = line[len("import time:"):].split("|")
                totals[group_of(name.strip())] += int(self_us) / 1e6
        totals["total (importtime)"] = sum(totals.values())
        totals["process CPU"] = (after.ru_utime - before.ru_utime + after.ru_stime
                                 - before.ru_stime)
        for name, value in totals.items():
            samples[name].append(value)
    return {name: min(values) for name, values in samples.items()}


def summary(runs: list[dict[str, float]]) -> dict[str, dict]:
    names = dict.fromkeys(name for run in runs for name in run)
    return {name: {"median": statistics.median(run[name] for run in runs if name in run),
                   "runs": [run.get(name) for run in runs]} for name in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="probed runs")
    parser.add_argument("--plain-runs", type=int, default=5, help="runs without the probe")
    parser.add_argument("--import-runs", type=int, default=5)
    parser.add_argument("--dcenter", default=str(BIN / "dcenter"), help="the program to start")
    parser.add_argument("--dworker", default=str(BIN / "dworker"), help="the program to start")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env.pop("DIST_STARTUP_PROBE", None)
    sys.path.insert(0, str(HERE))
    import numpy  # noqa: F401 -- as run.py's start-up workload: imports before the clock
    from benchvenv import compile_dist_packages

    compile_dist_packages()

    load_before = os.getloadavg()
    # Alternated, so that both kinds see the same load.
    kinds = [True] * args.runs + [False] * args.plain_runs
    order = sorted(range(len(kinds)), key=lambda i: (i % max(1, args.runs), i))
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in order:
        results[kinds[i]].append(one_run(env, args.dcenter, args.dworker, probe=kinds[i]))
    probed = summary(results[True]) if results[True] else {}
    plain = summary(results[False]) if results[False] else {}
    imports = {name: import_groups(statement, env, args.import_runs)
               for name, statement in IMPORTS.items()}
    bare = statistics.median(children_cpu([sys.executable, "-c", "pass"], env)
                             for _ in range(args.import_runs))
    load_after = os.getloadavg()

    for title, phases in (("probed runs", probed), ("plain runs", plain)):
        if not phases:
            continue
        print(f"-- {title} (median; wall s / CPU s of that process)")
        for name, phase in phases.items():
            if name.endswith("_cpu_s"):
                continue
            cpu = phases.get(name[:-2] + "_cpu_s")
            cpu_text = f"  cpu {cpu['median']:6.3f}" if cpu else ""
            print(f"{name:36} {phase['median']:7.3f}{cpu_text}   (runs: "
                  f"{', '.join(f'{v:.3f}' for v in phase['runs'] if v is not None)})")
    print(f"-- imports: -X importtime self time by group, s (least of {args.import_runs})")
    for program, groups in imports.items():
        print(f"{program:8} " + ", ".join(f"{name} {value:.3f}"
                                          for name, value in sorted(groups.items())))
    print(f"CPU of a bare interpreter: {bare:.3f} s")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    doc = {"probed": probed, "plain": plain, "imports_s": imports, "bare_interpreter_cpu_s": bare,
           "load_average_before": load_before, "load_average_after": load_after,
           "bytecode_cached": True,
           "dcenter": args.dcenter, "dworker": args.dworker}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
