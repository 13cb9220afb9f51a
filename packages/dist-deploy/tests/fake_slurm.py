"""A stand-in for ``sbatch``, ``squeue`` and ``scancel`` on one machine, for SLURMCluster's
tests where no SLURM runs:

    python fake_slurm.py STATE_DIR sbatch --parsable < script
    python fake_slurm.py STATE_DIR squeue ...
    python fake_slurm.py STATE_DIR scancel JOB_ID

``sbatch`` really runs the script (bash, in a session of its own) and enforces its ``-t``
walltime as SLURM does (SIGTERM to the job when it runs out); ``squeue`` lists the jobs whose
process is alive as RUNNING; ``scancel`` ends one. Every call is appended to ``calls.log``.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


def walltime(script: str) -> int | None:
    match = re.search(r"^#SBATCH -t (\S+)", script, re.M)
    if not match:
        return None
    numbers = [int(n) for n in match.group(1).split(":")]
    while len(numbers) < 3:
        numbers.insert(0, 0)
    hours, minutes, seconds = numbers
    return hours * 3600 + minutes * 60 + seconds


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def main() -> int:
    state, command, *args = sys.argv[1:]
    root = Path(state)
    root.mkdir(exist_ok=True)
    with open(root / "calls.log", "a") as calls:
        calls.write(json.dumps([command, *args]) + "\n")
    if command == "sbatch":
        script = sys.stdin.read()
        counter = root / "counter"
        job_id = int(counter.read_text()) + 1 if counter.exists() else 1001
        counter.write_text(str(job_id))
        path = root / f"{job_id}.sh"
        path.write_text(script)
        with open(root / f"{job_id}.out", "w") as out:
            job = subprocess.Popen(["bash", str(path)], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "SLURM_JOB_ID": str(job_id)})
        (root / f"{job_id}.pid").write_text(str(job.pid))
        limit = walltime(script)
        if limit:
            subprocess.Popen([sys.executable, __file__, state, "enforce", str(job_id),
                              str(limit)], start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(job_id)
    elif command == "squeue":
        for pid_file in sorted(root.glob("*.pid")):
            if alive(int(pid_file.read_text())):
                print(f"{pid_file.stem} RUNNING")
    elif command == "scancel":
        pid_file = root / f"{args[0]}.pid"
        if not pid_file.exists():
            print(f"scancel: error: Invalid job id {args[0]}", file=sys.stderr)
            return 1
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
    elif command == "enforce":
        job_id, limit = args[0], float(args[1])
        pid = int((root / f"{job_id}.pid").read_text())
        deadline = time.monotonic() + limit
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            (root / f"{job_id}.timeout").write_text("TIMEOUT")
            os.killpg(pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
