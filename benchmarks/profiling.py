"""Sampling profiles of a running cluster's processes, with py-spy, and their summaries.

py-spy attaches to a pid from outside, so the center and workers run unmodified. Profiling
slows the profiled processes, so run.py profiles an extra repetition of a workload after the
measured ones, never the measured run itself.
"""
from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from procs import Spawner

RATE = 200  # samples per second: enough for a run of several seconds, little overhead
LINE_NUMBER = re.compile(r"^(.*) \((.*?):\d+\)$")


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Recording:
    def __init__(self, spawner: Spawner, role: str, pid: int, out_dir: Path):
        self.role = role
        self.output = out_dir / f"profile-{role}.txt"
        self.spawner = spawner
        # --subprocesses follows a nanny's worker child; raw is folded stacks, one per line.
        self.proc, self.log = spawner.spawn(f"py-spy-{role}", [
            py_spy(), "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
            "--rate", str(RATE), "--output", str(self.output)])

    def stop(self) -> dict:
        """Ask py-spy to write what it has (it does on SIGINT) and summarize it."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        self.spawner.kill_one(self.proc)
        if not self.output.exists():
            return {"role": self.role, "error": self.log.read_text(errors="replace")[-500:]}
        return dict(summarize(self.output), role=self.role, folded=str(self.output))


def frame_name(frame: str) -> str:
    """``func (pkg/mod.py:123)`` -> ``func (pkg/mod.py)``: aggregate over lines."""
    match = LINE_NUMBER.match(frame.strip())
    return f"{match.group(1)} ({match.group(2)})" if match else frame.strip()


def summarize(folded: Path, top: int = 15) -> dict:
    """Share of active samples per function: where it was on top (self) and anywhere (total)."""
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    samples = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";")]
        # The first frames name the process and thread; keep only code frames.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))] or frames
        samples += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n

    def share(counter):
        return [[name, round(100 * n / samples, 1)] for name, n in counter.most_common(top)]

    return {"samples": samples, "seconds_active": samples / RATE,
            "self_pct": share(own) if samples else [],
            "total_pct": share(inclusive) if samples else []}


def render(profiles: list[dict], lines: int = 10) -> str:
    out = []
    for prof in profiles:
        if "error" in prof:
            out.append(f"{prof['role']}: profile failed: {prof['error']}")
            continue
        out.append(f"{prof['role']}: {prof['samples']} samples "
                   f"({prof['seconds_active']:.1f} s busy), top self time:")
        out += [f"  {pct:5.1f}%  {name}" for name, pct in prof["self_pct"][:lines]]
    return "\n".join(out)
