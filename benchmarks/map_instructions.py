"""Instructions per task of a map, in the center, a worker or the client of a live cluster.

One process of a small cluster (``dcenter`` and one ``dworker --no-nanny``, so that the
worker runs every task, and the client) runs under ``valgrind --tool=callgrind``; the client
warms the cluster up, maps ``inc`` over N numbers and gathers them, and the process is
stopped. The count of a map of N less that of a map of ``--base`` (none by default), divided
by their difference, is what a map's task costs that process, whatever the load of a shared
machine.

    python benchmarks/map_instructions.py [--role center|worker|client] [--n 4000]
        [--base 0] [--without columns] [--profile PATH]

``--without`` names protocol features every process leaves out of its announcement (through
``DIST_PROTOCOL_FEATURES``), to compare the same code with and without them. ``--profile``
writes the callgrind profiles of both runs (``PATH`` and ``PATH.base``), for
``callgrind_annotate`` by function.

Under valgrind every task runs some 50 times slower, and a worker decides by the time a run
takes whether a function runs on its event loop or on a thread: the counted worker's inline
limits are stretched as much (a ``sitecustomize`` on its path), so that ``inc`` runs on the
loop as it does outside valgrind, and the count does not depend on how many runs happened to
take the pool.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

CLIENT = r'''
import sys
import bench_tasks as t
from dist_client import Executor
with Executor(sys.argv[1]) as ex:
    for i in range(50):
        ex.submit(t.inc, -i - 1).result()
    n = int(sys.argv[2])
    assert ex.gather(ex.map(t.inc, range(n))) == list(range(1, n + 1))
'''


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen) -> str:
    import time
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"{log.name} exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"{log.name}: no {pattern!r}")


# Put on the counted worker's path: its inline limits stretched as valgrind slows it down.
STRETCH_INLINE = '''
from dist_worker.inline_policy import InlinePolicy
InlinePolicy.FAST *= 50
InlinePolicy.SLOW *= 50
InlinePolicy.BUDGET *= 50
'''


def count(role: str, n: int, env: dict[str, str], profile: str | None = None) -> int:
    """Instructions of the ``role`` process over a run with a map of ``n`` (its callgrind
    profile written to ``profile``, if given)."""
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile or '/dev/null'}"]
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch)
        (logs / "sitecustomize.py").write_text(STRETCH_INLINE)
        stretched = dict(env, PYTHONPATH=os.pathsep.join([scratch, env["PYTHONPATH"]]))
        try:
            center_log = logs / "center.log"
            with open(center_log, "wb") as out:
                center = subprocess.Popen(
                    [*(valgrind if role == "center" else []), str(BIN / "dcenter"),
                     "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
                    # (as it runs: dcenter would start itself again with this set)
                    env=dict(env, PYTHONMALLOC="malloc"), stdout=out, stderr=subprocess.STDOUT)
            procs.append(center)
            address = _wait_for(center_log, r"Start center at (\S+)", center)
            worker_log = logs / "worker.log"
            with open(worker_log, "wb") as out:
                worker = subprocess.Popen(
                    [*(valgrind if role == "worker" else []), str(BIN / "dworker"), address,
                     "--nthreads", "1", "--no-nanny"],
                    env=stretched if role == "worker" else env,
                    stdout=out, stderr=subprocess.STDOUT)
            procs.append(worker)
            _wait_for(worker_log, r"(Registered)", worker)
            client_log = logs / "client.log"
            with open(client_log, "wb") as out:
                client = subprocess.run(
                    [*(valgrind if role == "client" else []), sys.executable, "-c", CLIENT,
                     address, str(n)],
                    env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
            if client.returncode:
                raise RuntimeError(f"the client failed: {client_log.read_text()[-2000:]}")
            if role == "client":
                return int(_wait_for(client_log, r"Collected : (\d+)", center))
            counted = center if role == "center" else worker
            counted.send_signal(signal.SIGTERM)
            counted.wait(300)
            log = center_log if role == "center" else worker_log
            return int(_wait_for(log, r"Collected : (\d+)", counted))
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["center", "worker", "client"], default="center")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--base", type=int, default=0, help="the map length counted off")
    parser.add_argument("--without", default="", help="features to leave out, comma-separated")
    parser.add_argument("--profile", help="write the callgrind profile of the map's run here")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    left_out = {name for name in args.without.split(",") if name}
    if left_out:
        from dist_protocol.features import default_features
        env["DIST_PROTOCOL_FEATURES"] = ",".join(sorted(default_features() - left_out))
    full = count(args.role, args.n, env, args.profile)
    base = count(args.role, args.base, env, args.profile and args.profile + ".base")
    print(f"{args.role}, map of {args.n:,} less {args.base:,}"
          f"{' without ' + args.without if left_out else ''}: "
          f"{(full - base) / (args.n - args.base):,.0f} instructions per task "
          f"({full:,} - {base:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
