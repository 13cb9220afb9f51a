"""System calls per round trip (or per link of a chain) in each process of a live cluster.

Runs ``dcenter``, two ``dworker --no-nanny`` and a client (``roundtrip_cpu.py``'s), each under
``strace -f -c``, for N and then 3N round trips (``submit(inc, i).result()``, one at a time)
or links of a chain; the difference of the two counts divided by 2N is what a round trip
costs each process in system calls, whatever the load (start-up and shut-down cancel out).
The calls that wake a process (``epoll_pwait``, ``futex``) are its wake-ups and thread
hand-overs; ``strace -f -tt`` on the same commands puts them in order.

    python benchmarks/roundtrip_syscalls.py [--mode latency|chain] [--n 500]

Needs ``strace`` (Debian's package of that name). Under strace every system call is slower,
so timers (heartbeats, the memory monitor, the client's release timer) fire a little more
often per round trip than in a plain run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
from procs import bare_cluster
from roundtrip_cpu import CLIENT

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def traced(out: Path, role: str, command: list[str]) -> list[str]:
    return ["strace", "-f", "-c", "-o", str(out / f"{role}.txt"), *command]


def stop(procs: list[subprocess.Popen]) -> None:
    """strace holds SIGTERM while it runs a command: the traced process is stopped instead,
    and strace writes its counts as it goes."""
    for proc in reversed(procs):
        try:
            for child in psutil.Process(proc.pid).children():
                child.terminate()
        except psutil.Error:
            pass
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def one_run(mode: str, n: int, env: dict[str, str], out: Path) -> None:
    procs: list[subprocess.Popen] = []
    try:
        address = bare_cluster(BIN, env, procs, wrap=lambda cmd, role: traced(out, role, cmd))
        client = subprocess.Popen(
            traced(out, "client", [sys.executable, "-c", CLIENT, address, str(n), mode]),
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(client)
        assert client.stdin is not None and client.stdout is not None
        if client.stdout.readline().strip() != "GO":
            raise RuntimeError("the client did not start")
        client.stdin.write("\n")
        client.stdin.flush()
        line = client.stdout.readline()
        if not line.startswith("RESULT "):
            raise RuntimeError(f"the client failed: {line!r}")
        client.stdin.write("\n")
        client.stdin.flush()
        if mode == "chain":
            client.stdout.readline()  # (the stories' count, not needed here)
        client.wait(120)
    finally:
        stop(procs)


def counts(path: Path) -> dict[str, int]:
    """``strace -c``'s table: system call -> calls."""
    found = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            found[parts[-1]] = int(parts[3])
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["latency", "chain"], default="latency")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args(argv)
    if shutil.which("strace") is None:
        print("strace is not installed (apt-get install strace)", file=sys.stderr)
        return 1
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="roundtrip-syscalls-") as tmp:
        short, long = Path(tmp, "short"), Path(tmp, "long")
        short.mkdir()
        long.mkdir()
        one_run(args.mode, args.n, env, short)
        one_run(args.mode, 3 * args.n, env, long)
        print(f"system calls per {'round trip' if args.mode == 'latency' else 'link'} "
              f"({args.mode}, {args.n} and {3 * args.n}, load {os.getloadavg()[0]:.1f}):")
        # The workers together: which of the two runs the tasks can change between runs.
        for label, roles in (("client", ["client"]), ("center", ["center"]),
                             ("workers", ["w0", "w1"])):
            per: dict[str, float] = {}
            for role in roles:
                before, after = counts(short / f"{role}.txt"), counts(long / f"{role}.txt")
                for name in before.keys() | after.keys():
                    per[name] = per.get(name, 0.0) + (
                        after.get(name, 0) - before.get(name, 0)) / (2 * args.n)
            shown = {name: round(value, 2) for name, value in
                     sorted(per.items(), key=lambda item: -item[1]) if abs(value) >= 0.02}
            print(f"  {label:7}", shown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
