"""``SLURMCluster``: workers as SLURM jobs, one ``dworker`` per job (as dask-jobqueue does).

The center runs here (it needs dist-center installed here) and each job runs a worker with
``--nthreads`` and ``--memory-limit`` matching what the job asked for. ``job_script()`` shows
what is submitted. ``scale`` submits (``sbatch``) and cancels (``scancel``, after a graceful
retirement for workers that registered). A watcher polls ``squeue``: a job that left the queue
(failed, cancelled, out of time) is noticed and replaced; a worker close to its walltime is
retired gracefully first (its data moved), and a replacement job is submitted.

The token reaches the jobs as a file readable by this user alone (``token_directory``, on a
filesystem the nodes share, as the job scripts are), never in a script or a command line.
"""
from __future__ import annotations

import atexit
import getpass
import logging
import math
import os
import re
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dist_client.cluster import Cluster
from dist_protocol.security import new_token

from .remote import BOOTSTRAP, RemoteProcess

log = logging.getLogger("dist.deploy.slurm")
START_TIMEOUT = 60.0
UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
         "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
         "tib": 2**40}


def parse_bytes(text: str) -> int:
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).lower() not in UNITS:
        raise ValueError(f"not a size: {text!r} (e.g. '4GB', '512MiB')")
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def parse_walltime(text: str) -> int:
    """SLURM's time formats (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) -> seconds."""
    days = 0
    if "-" in text:
        day_part, text = text.split("-", 1)
        days = int(day_part)
        parts = [int(p) for p in text.split(":")] + [0] * (3 - len(text.split(":")))
        hours, minutes, seconds = parts[:3]
    else:
        numbers = [int(p) for p in text.split(":")]
        if len(numbers) == 1:
            hours, minutes, seconds = 0, numbers[0], 0
        elif len(numbers) == 2:
            hours, (minutes, seconds) = 0, numbers
        elif len(numbers) == 3:
            hours, minutes, seconds = numbers
        else:
            raise ValueError(f"not a SLURM walltime: {text!r}")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass
class Job:
    name: str
    job_id: str
    running_since: float | None = None  # this process's clock, when first seen running
    retiring: bool = False
    gone: bool = False  # no longer in the queue, or in a final state


class SLURMCluster(Cluster):
    worker_prefix = "slurm"

    def __init__(self, cores: int = 1, memory: str = "1GB", walltime: str = "00:30:00",
                 queue: str | None = None, account: str | None = None,
                 job_extra: Sequence[str] = (), job_script_prologue: Sequence[str] = (),
                 job_name: str = "dist-worker", python: str = sys.executable,
                 log_directory: str | None = None, token_directory: str | None = None,
                 center_host: str = "0.0.0.0", center_port: int = 0,
                 center_options: Sequence[str] = ("--no-dashboard",),
                 worker_extra_args: Sequence[str] = (), death_timeout: float = 60.0,
                 retire_before_walltime: float = 60.0, poll_interval: float = 5.0,
                 n_workers: int = 0, commands: dict[str, str] | None = None):
        super().__init__(threads_per_worker=cores)
        self.cores = cores
        self.memory = memory
        self.memory_bytes = parse_bytes(memory)
        self.walltime = walltime
        self.walltime_seconds = parse_walltime(walltime)
        self.queue, self.account = queue, account
        self.job_extra = list(job_extra)
        self.job_script_prologue = list(job_script_prologue)
        self.job_name = job_name
        self.python = python
        self.log_directory = log_directory
        self.worker_extra_args = list(worker_extra_args)
        self.death_timeout = death_timeout
        self.retire_before_walltime = retire_before_walltime
        self.poll_interval = poll_interval
        # The programs to run, for sites that wrap them: {"sbatch": ..., "squeue": ...}.
        self.commands = {"sbatch": "sbatch", "squeue": "squeue", "scancel": "scancel",
                         **(commands or {})}
        self.token = new_token()
        directory = Path(token_directory or Path.home() / ".dist-slurm")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.token_file = directory / f"token-{secrets.token_hex(8)}"
        descriptor = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(self.token + "\n")
        self.requested = n_workers
        self.center: RemoteProcess | None = None
        self._stop_watching = threading.Event()
        atexit.register(self.close)
        try:
            argv = [python, "-m", "dist_center.cli", "--host", center_host, "--port",
                    str(center_port), *center_options]
            self.center = RemoteProcess([python, "-c", BOOTSTRAP, *argv], "center",
                                        self.token)
            self.address = self.center.wait_for("Start center at ", START_TIMEOUT)
            self.status = "running"
            self.scale_up(n_workers)
        except BaseException:
            self.close()
            raise
        self._watcher = threading.Thread(target=self._watch, name="dist-slurm-watch",
                                         daemon=True)
        self._watcher.start()

    # -- the job script --------------------------------------------------------------------
    def job_script(self, name: str | None = None) -> str:
        """The batch script of a worker job (of the next one when ``name`` is not given)."""
        name = name or f"{self.worker_prefix}-next"
        directives = [f"-J {self.job_name}", "-n 1", f"--cpus-per-task={self.cores}",
                      f"--mem={math.ceil(self.memory_bytes / 2**20)}M", f"-t {self.walltime}"]
        if self.queue:
            directives.append(f"-p {self.queue}")
        if self.account:
            directives.append(f"-A {self.account}")
        if self.log_directory:
            directives.append(f"--output={self.log_directory}/%x-%j.out")
        directives += self.job_extra
        worker = [self.python, "-m", "dist_worker.cli", self.address, "--name", name,
                  "--nthreads", str(self.cores), "--memory-limit", str(self.memory_bytes),
                  "--timeout", str(self.death_timeout), "--token-file", str(self.token_file),
                  *self.worker_extra_args]
        lines = ["#!/usr/bin/env bash", *(f"#SBATCH {d}" for d in directives), "",
                 *self.job_script_prologue, "exec " + shlex.join(worker), ""]
        return "\n".join(lines)

    # -- jobs --------------------------------------------------------------------------------
    def _run(self, command: str, *args: str, input: str | None = None) -> str:
        argv = [*shlex.split(self.commands[command]), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): "
                               f"{result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def start_worker(self, name: str) -> Job:
        out = self._run("sbatch", "--parsable", input=self.job_script(name))
        job_id = out.strip().split(";")[0]
        if not job_id:
            raise RuntimeError(f"sbatch printed no job id: {out!r}")
        log.info("submitted job %s for worker %s", job_id, name)
        return Job(name, job_id)

    def stop_worker(self, name: str, handle: Job) -> None:
        try:
            self._run("scancel", handle.job_id)
        except RuntimeError as exc:  # finished meanwhile: nothing to cancel
            log.info("%s", exc)

    def job_states(self) -> dict[str, str]:
        """job id -> state (PENDING, RUNNING, ...) of this user's jobs in the queue."""
        out = self._run("squeue", "--noheader", "--format=%i %T",
                        f"--user={getpass.getuser()}")
        states = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                states[parts[0]] = parts[1]
        return states

    def forget_dead(self) -> list[str]:
        states = self.job_states()
        now = time.monotonic()
        with self._lock:
            for job in self.workers.values():
                state = states.get(job.job_id)
                job.gone = state is None or state not in ("PENDING", "CONFIGURING", "RUNNING",
                                                          "COMPLETING")
                if state == "RUNNING" and job.running_since is None:
                    job.running_since = now
            return super().forget_dead()

    def worker_gone(self, name: str, handle: Job) -> bool:
        return handle.gone

    def near_walltime(self) -> list[str]:
        """Workers whose job ends within ``retire_before_walltime`` seconds."""
        now = time.monotonic()
        limit = self.walltime_seconds - self.retire_before_walltime
        with self._lock:
            return [job.name for job in self.workers.values()
                    if job.running_since is not None and not job.retiring
                    and now - job.running_since >= limit]

    def _watch(self) -> None:
        while not self._stop_watching.wait(self.poll_interval):
            try:
                self.check_jobs()
            except Exception as exc:  # noqa: BLE001 -- squeue may fail for a while; go on
                if self.status == "running":
                    log.warning("watching the SLURM jobs: %s", exc)

    def check_jobs(self) -> None:
        """Notice dead jobs; for a worker about to run out of time, submit a replacement and,
        once another worker is up to take its data, retire it gracefully; keep the number of
        jobs ``scale`` asked for (adaptive scaling decides that itself)."""
        with self._lock:
            if self.status != "running":
                return
            dead = self.forget_dead()
            for name in self.near_walltime():
                self.workers[name].retiring = True
                log.info("worker %s nears its walltime: replacing it", name)
                if self.adaptive is not None:
                    self.scale_up(len(self.workers) + 1)
            retiring = [job.name for job in self.workers.values() if job.retiring]
            if self.adaptive is None:
                self.scale_up(self.requested + len(retiring))
        if dead:
            log.warning("jobs ended: %s", ", ".join(dead))
        if retiring:
            registered = {worker["name"] for worker in self.link.workers()}
            if registered - set(retiring):  # someone to take their data
                self.retire(retiring)

    def scale(self, n: int) -> None:
        self.requested = n
        super().scale(n)

    def stop_center(self) -> None:
        if self.center is not None:
            self.center.stop()
            self.center = None

    def close(self) -> None:
        self._stop_watching.set()
        super().close()
        self.token_file.unlink(missing_ok=True)
        atexit.unregister(self.close)
