"""The same cluster shape for each system: one center/scheduler, two single-threaded worker
processes, all on 127.0.0.1, started the way an operator would from the command line.

``start_center`` returns once the center is accepting connections, ``start_workers`` once both
workers are up; the start-up workload times the two together (plus the first task).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil

from procs import Spawner, free_port, sum_rss, tail, tree_rss, wait_for_line

BOOT_TIMEOUT = 90.0


def find_cli(name: str, bin_dir: Path) -> str | None:
    """The console script next to the running interpreter first (the venv), else on PATH."""
    candidate = bin_dir / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


class Cluster:
    system = ""

    def __init__(self, spawner: Spawner, bin_dir: Path):
        self.spawner = spawner
        self.bin_dir = bin_dir
        self.address = ""
        self.workers: list[str] = []
        self.center_pid = 0
        self.worker_pids: list[int] = []

    def cli(self, name: str) -> str:
        path = find_cli(name, self.bin_dir)
        if path is None:
            raise RuntimeError(f"`{name}` not found")
        return path

    def start(self) -> None:
        self.start_center()
        self.start_workers()

    def start_center(self) -> None:
        raise NotImplementedError

    def start_workers(self) -> None:
        raise NotImplementedError

    def rss(self) -> dict[str, int]:
        """Resident memory by role, in bytes (whole process trees, nannies included)."""
        return {"center": tree_rss(self.center_pid),
                "workers": sum(tree_rss(pid) for pid in self.worker_pids)}

    def stop(self) -> None:
        self.spawner.kill_all()


class DistCluster(Cluster):
    system = "dist"

    def start_center(self) -> None:
        port = free_port()
        proc, log = self.spawner.spawn("dcenter", [self.cli("dcenter"), "--host", "127.0.0.1",
                                                   "--port", str(port)])
        match = wait_for_line(log, r"Start center at (\S+)", proc, BOOT_TIMEOUT)
        self.address = match.group(1)
        self.center_pid = proc.pid

    def start_workers(self) -> None:
        started = [self.spawner.spawn(f"dworker-{i}", [self.cli("dworker"), self.address,
                                                       "--nthreads", "1", "--name", f"w{i}"])
                   for i in range(2)]
        for proc, log in started:
            match = wait_for_line(log, r"Start worker at (\S+)", proc, BOOT_TIMEOUT)
            self.workers.append(match.group(1))
            self.worker_pids.append(proc.pid)
        for proc, log in started:
            # The worker announces registration on its own line; without it tasks pinned to
            # that worker could be refused as unknown.
            wait_for_line(log, r"Registered", proc, BOOT_TIMEOUT)


class DaskCluster(Cluster):
    system = "dask"

    def start_center(self) -> None:
        port = free_port()
        proc, log = self.spawner.spawn("dask-scheduler", [
            self.cli("dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
            "--no-dashboard"])
        match = wait_for_line(log, r"Scheduler at:\s+(\S+)", proc, BOOT_TIMEOUT)
        self.address = match.group(1)
        self.center_pid = proc.pid

    def start_workers(self) -> None:
        started = [self.spawner.spawn(f"dask-worker-{i}", [
            self.cli("dask"), "worker", self.address, "--nthreads", "1", "--nworkers", "1",
            "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
            "--local-directory", str(self.spawner.log_dir / f"dask-w{i}")]) for i in range(2)]
        for proc, log in started:
            match = wait_for_line(log, r"Start worker at:\s+(\S+)", proc, BOOT_TIMEOUT)
            self.workers.append(match.group(1))
            self.worker_pids.append(proc.pid)
        for proc, log in started:
            wait_for_line(log, r"Registered to:", proc, BOOT_TIMEOUT)


class RayCluster(Cluster):
    """A head node and a second node on this machine, one CPU each; tasks ask for one CPU,
    so each node is one single-threaded worker. ``--block`` keeps ``ray start`` in the
    foreground, so its daemons stay in the session we created and die with it."""

    system = "ray"
    OBJECT_STORE_BYTES = 1_500_000_000

    def __init__(self, spawner: Spawner, bin_dir: Path):
        super().__init__(spawner, bin_dir)
        # Ray's unix sockets need a short path, so not under the log directory.
        self.temp_dir = tempfile.mkdtemp(prefix="rb-")
        spawner.scratch_dirs.append(self.temp_dir)

    def common(self) -> list[str]:
        return ["--num-cpus", "1", "--disable-usage-stats", "--node-ip-address", "127.0.0.1",
                "--object-store-memory", str(self.OBJECT_STORE_BYTES), "--block"]

    def start_center(self) -> None:
        # An ephemeral port stays clear of Ray's default worker port range (10002-19999).
        port = free_port()
        proc, log = self.spawner.spawn("ray-head", [
            self.cli("ray"), "start", "--head", "--port", str(port), "--include-dashboard",
            "false", "--temp-dir", self.temp_dir, *self.common()])
        wait_for_line(log, r"Ray runtime started", proc, BOOT_TIMEOUT)
        self.address = f"127.0.0.1:{port}"
        self.center_pid = proc.pid

    def start_workers(self) -> None:
        proc, log = self.spawner.spawn("ray-node", [
            self.cli("ray"), "start", "--address", self.address, *self.common()])
        wait_for_line(log, r"Ray runtime started", proc, BOOT_TIMEOUT)
        self.worker_pids.append(proc.pid)
        self.workers = []  # node ids; the driver asks Ray for them

    def rss(self) -> dict[str, int]:
        """Ray has no single center: count GCS and both raylets (scheduling and object store)
        as the center, the task-running ``ray::`` processes as the workers, the rest apart."""
        roles: dict[str, list[psutil.Process]] = {"center": [], "workers": [], "other": []}
        for p in self.spawner.ours():
            try:
                name = p.name()
                cmd = " ".join(p.cmdline()[:1])
            except psutil.Error:
                continue
            if name in ("gcs_server", "raylet"):
                roles["center"].append(p)
            elif cmd.startswith("ray::") and "Agent" not in cmd:
                roles["workers"].append(p)
            elif "driver.py" not in " ".join(p.cmdline()):
                roles["other"].append(p)
        return {role: sum_rss(procs) for role, procs in roles.items()}


CLUSTERS = {"dist": DistCluster, "dask": DaskCluster, "ray": RayCluster}

# What each system needs importable in the benchmark interpreter, and its CLIs.
REQUIREMENTS = {
    "dist": (["dist_client", "numpy"], ["dcenter", "dworker"]),
    "dask": (["distributed", "numpy"], ["dask"]),
    "ray": (["ray", "numpy"], ["ray"]),
}


def missing_reason(system: str, python: str, bin_dir: Path) -> str | None:
    """Why ``system`` cannot run here, or None when it can."""
    modules, clis = REQUIREMENTS[system]
    absent = [c for c in clis if find_cli(c, bin_dir) is None]
    check = subprocess.run([python, "-c", "import " + ", ".join(modules)],
                           capture_output=True, text=True, timeout=120)
    reasons = []
    if check.returncode != 0:
        reasons.append(check.stderr.strip().splitlines()[-1] if check.stderr.strip()
                       else f"import {', '.join(modules)} failed")
    if absent:
        reasons.append("no " + ", ".join(f"`{c}`" for c in absent) + " command")
    return "; ".join(reasons) or None


__all__ = ["CLUSTERS", "Cluster", "missing_reason", "tail"]
