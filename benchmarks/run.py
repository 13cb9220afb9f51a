"""Run the benchmark suite: dist, dask.distributed and Ray side by side on one cluster shape.

    python benchmarks/run.py [--systems dist,dask,ray] [--quick] [--timeout-scale 2]

Prints a table and the target ratios, and writes JSON into benchmarks/results/. Each system's
cluster and each workload's client are separate process sessions: a hang or a crash costs one
workload (its cluster is restarted for the next), and every process started here is killed on
the way out, on errors and on Ctrl-C too. See README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchvenv import reexec_in_venv

HERE = Path(__file__).resolve().parent

reexec_in_venv(__file__)

import psutil  # noqa: E402  (only after choosing the interpreter)

import profiling  # noqa: E402
import report  # noqa: E402
from clusters import CLUSTERS, missing_reason  # noqa: E402
from procs import Spawner, tail  # noqa: E402

SYSTEMS = ["dist", "dask", "ray"]
MB = 1e6

# (result key, driver workload, full-size n, quick n, timeout in seconds at full size)
PLAN = [
    ("latency", "latency", 200, 50, 90),
    ("throughput_small", "throughput", 10_000, 1_000, 240),
    ("throughput_large", "throughput", 100_000, 10_000, 900),
    ("chain", "chain", 1_000, 200, 180),
    ("fanin", "fanin", 1_000, 200, 180),
    ("scatter", "scatter", 100_000_000, 100_000_000, 180),
    ("w2w", "w2w", 200_000_000, 200_000_000, 300),
]
STARTUP_TIMEOUT = 180
SETTLE_SECONDS = 2.0  # for releases to propagate before memory is read


class WorkloadFailed(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Driver:
    """A driver.py process with its @@-lines read on a thread (so waits can time out)."""

    def __init__(self, spawner: Spawner, name: str, argv: list[str]):
        self.spawner = spawner
        self.proc, self.log = spawner.spawn(name, argv, stdin=subprocess.PIPE,
                                            stdout_pipe=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("@@"):
                self.lines.put(line[2:])
        self.lines.put(None)

    def expect(self, tag: str, deadline: float):
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise WorkloadFailed("timeout",
                                     f"no {tag} in time; {tail(self.log, 3)}") from None
            if line is None:
                self.proc.wait(timeout=10)
                raise WorkloadFailed("error", f"driver exited with {self.proc.returncode}: "
                                              f"{tail(self.log, 3)}")
            name, _, payload = line.partition(" ")
            if name == tag:
                return json.loads(payload) if payload else None

    def say(self, text: str) -> None:
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30.0) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.spawner.kill_one(self.proc)


class SystemRun:
    """All workloads of one system, restarting its cluster after a failed workload."""

    def __init__(self, system: str, args, log_dir: Path, env: dict[str, str]):
        self.system = system
        self.args = args
        self.spawner = Spawner(log_dir / system, env)
        (log_dir / system).mkdir(parents=True, exist_ok=True)
        self.cluster = None
        self.out = {"status": "ok", "workloads": {}, "memory": {}, "logs": str(log_dir / system)}

    def driver_argv(self, workload: str, n: int = 0, hold: bool = False,
                    timeout: float = 120) -> list[str]:
        argv = [sys.executable, str(HERE / "driver.py"), self.system, workload,
                "--n", str(n), "--timeout", str(timeout)]
        if self.cluster is not None:
            argv += ["--address", self.cluster.address, "--workers",
                     ",".join(self.cluster.workers)]
        return argv + (["--hold"] if hold else [])

    def new_cluster(self):
        return CLUSTERS[self.system](self.spawner, Path(sys.executable).parent)

    def measure_rss(self) -> dict[str, float]:
        time.sleep(SETTLE_SECONDS)
        return {role: round(b / MB, 1) for role, b in self.cluster.rss().items()}

    def run(self) -> dict:
        try:
            self.startup()
            for key, workload, full_n, quick_n, timeout in PLAN:
                if self.args.only and key not in self.args.only:
                    continue
                if self.cluster is None:
                    self.restart()
                n = quick_n if self.args.quick else full_n
                self.workload(key, workload, n, timeout * self.args.timeout_scale)
            if self.system in self.args.profile:
                if self.cluster is None:
                    self.restart()
                self.profile()
        except KeyboardInterrupt:
            self.out["status"] = "interrupted"
            raise
        except Exception as exc:  # noqa: BLE001 -- a cluster that will not start: the rest cannot run
            self.out["status"] = "error"
            self.out["reason"] = f"{type(exc).__name__}: {exc}"
        finally:
            self.spawner.kill_all()
        return self.out

    def restart(self) -> None:
        self.spawner.kill_all()
        self.cluster = self.new_cluster()
        self.cluster.start()
        self.out["memory"]["idle_after_restart"] = self.measure_rss()

    def startup(self) -> None:
        """Clock from launching the center to the first result: the center, then both workers,
        while an already-imported client connects as soon as the center listens."""
        timeout = STARTUP_TIMEOUT * self.args.timeout_scale
        deadline = time.monotonic() + timeout
        # The driver stays connected afterwards so "idle" is measured the way "after" is:
        # one client attached, holding nothing (Ray's workers exist only while one is).
        driver = Driver(self.spawner, "driver-startup",
                        self.driver_argv("startup", hold=True, timeout=timeout))
        try:
            driver.expect("READY", deadline)
            self.cluster = self.new_cluster()
            t0 = time.time()
            self.cluster.start_center()
            driver.say(f"{t0} {self.cluster.address}")
            self.cluster.start_workers()
            workers_ready = time.time() - t0
            result = driver.expect("RESULT", deadline)
            result["workers_ready_s"] = workers_ready
            self.record("startup", result)
            self.out["memory"]["idle"] = self.measure_rss()
        except WorkloadFailed as failed:
            self.fail("startup", failed)
        except Exception as exc:  # noqa: BLE001 -- reported as the workload's failure
            self.fail("startup", WorkloadFailed("error", f"{type(exc).__name__}: {exc}"))
        finally:
            driver.finish()

    def workload(self, key: str, workload: str, n: int, timeout: float) -> None:
        hold = workload == "throughput"
        driver = Driver(self.spawner, f"driver-{key}",
                        self.driver_argv(workload, n, hold, timeout))
        try:
            result = driver.expect("RESULT", time.monotonic() + timeout)
            self.record(key, result)
            if hold:
                self.out["memory"][f"after_{key}"] = self.measure_rss()
                self.out["memory"][f"after_{key}"]["n"] = n
        except WorkloadFailed as failed:
            self.fail(key, failed)
        finally:
            driver.finish()

    def profile(self) -> None:
        """Workload 2 at the large size once more, with py-spy on the center and workers."""
        key, workload, full_n, quick_n, timeout = PLAN[2]
        n = quick_n if self.args.quick else full_n
        if profiling.py_spy() is None:
            self.out["profile"] = {"error": "py-spy not installed (see requirements.txt)"}
            return
        pids = [("center", self.cluster.center_pid)]
        pids += [(f"worker-{i}", pid) for i, pid in enumerate(self.cluster.worker_pids)]
        driver = Driver(self.spawner, "driver-profile",
                        self.driver_argv(workload, n) + ["--wait-go"])
        recordings = []
        try:
            deadline = time.monotonic() + timeout * 2
            driver.expect("READY", deadline)
            pids.append(("client", driver.proc.pid))
            recordings = [profiling.Recording(self.spawner, role, pid, self.spawner.log_dir)
                          for role, pid in pids]
            time.sleep(1.0)  # py-spy needs a moment to attach
            driver.say("go")
            result = driver.expect("RESULT", deadline)
        except WorkloadFailed as failed:
            result = {"status": failed.status, "reason": failed.reason}
        finally:
            driver.finish()
        profiles = [rec.stop() for rec in recordings]
        self.out["profile"] = {"workload": key, "n": n, "result": result,
                               "processes": profiles}
        print(f"  {self.system:5} profile of {key} (n={n:,}, under py-spy: "
              f"{report.fmt(result.get('value'))} tasks/s)")
        print("    " + profiling.render(profiles).replace("\n", "\n    "), flush=True)

    def record(self, key: str, result: dict) -> None:
        result["status"] = "ok"
        self.out["workloads"][key] = result
        self.out.setdefault("version", result.get("version"))
        print(f"  {self.system:5} {key:17} {report.fmt(result['value'])} {result['unit']}",
              flush=True)

    def fail(self, key: str, failed: WorkloadFailed) -> None:
        self.out["workloads"][key] = {"status": failed.status, "reason": failed.reason}
        print(f"  {self.system:5} {key:17} {failed.status}: {failed.reason}", flush=True)
        # Whatever hung or crashed may have left the cluster unusable: start afresh.
        self.spawner.kill_all()
        self.cluster = None


def raw_socket(args, log_dir: Path, env: dict[str, str]) -> dict:
    spawner = Spawner(log_dir, env)
    argv = [sys.executable, str(HERE / "rawsocket.py"), "--nbytes", str(PLAN[-1][2])]
    driver = Driver(spawner, "rawsocket", argv)
    try:
        result = driver.expect("RESULT", time.monotonic() + 120 * args.timeout_scale)
        result["status"] = "ok"
        return result
    except WorkloadFailed as failed:
        return {"status": failed.status, "reason": failed.reason}
    finally:
        driver.finish()
        spawner.kill_all()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DIST_BENCH_NO_REEXEC", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"  # readiness lines must reach the log files at once
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # One thread per worker means one: keep numpy's BLAS pools from adding more.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("dist-client", "dist-center", "dist-worker", "dist-protocol", "distributed",
                 "ray", "numpy", "uvloop"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated subset of dist,dask,ray (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller task counts (N=1,000/10,000, 50 round trips, "
                             "200-task chain and fan-in); byte sizes stay the same")
    parser.add_argument("--timeout-scale", type=float, default=1.0,
                        help="multiply every per-workload timeout (slow machines)")
    parser.add_argument("--profile", default="",
                        help="comma-separated systems to profile with py-spy (center and "
                             "workers) during an extra, unmeasured run of workload 2")
    parser.add_argument("--output", type=Path, help="JSON path (default: results/<time>.json)")
    parser.add_argument("--only", default="",
                        help="comma-separated workloads to run, of "
                             f"{','.join(key for key, *_ in PLAN)} (default: all)")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown_workloads = sorted(set(args.only) - {key for key, *_ in PLAN})
    if unknown_workloads:
        parser.error(f"unknown workload(s): {', '.join(unknown_workloads)}")
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.profile = [s.strip() for s in args.profile.split(",") if s.strip()]
    unknown = sorted(set(args.systems + args.profile) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s): {', '.join(unknown)}; choose from {SYSTEMS}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results_dir = HERE / "results"
    log_dir = results_dir / "logs" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    output = args.output or results_dir / f"{stamp}.json"
    env = child_env()
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally blocks reap the clusters.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)

    doc = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "versions": versions(),
        "sizes": {key: (quick_n if args.quick else full_n)
                  for key, _, full_n, quick_n, _ in PLAN},
        "systems": {},
        "logs": str(log_dir),
    }
    exit_code = 0
    try:
        print("raw loopback socket ...", flush=True)
        doc["raw_socket"] = raw_socket(args, log_dir, env)
        for system in SYSTEMS:
            if system not in args.systems:
                continue
            reason = missing_reason(system, sys.executable, Path(sys.executable).parent)
            if reason:
                doc["systems"][system] = {"status": "missing", "reason": reason}
                print(f"{system}: missing ({reason})", flush=True)
                continue
            print(f"{system} ...", flush=True)
            run = SystemRun(system, args, log_dir, env)
            # Other work on the machine skews every figure; keep the evidence beside them.
            run.out["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
            try:
                doc["systems"][system] = run.run()
            finally:
                doc["systems"].setdefault(system, run.out)
    except KeyboardInterrupt:
        doc["interrupted"] = True
        exit_code = 130
    doc["targets"] = report.targets(doc)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(doc, indent=2))
    (results_dir / "latest.json").write_text(json.dumps(doc, indent=2))
    print()
    print(report.render(doc, [s for s in SYSTEMS if s in args.systems]))
    print(f"\nJSON: {output}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
