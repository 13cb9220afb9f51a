"""The requests a steady client makes for its view of the workers, with and without the
protocol feature ``worker-events``.

Before pickled code is sent the client must know which worker runs which Python. Without
``worker-events`` it asks ``cluster-info`` whenever its view is older than a second (in the
background past 0.75 s); with it the center sends the workers once and then each join and
leave, and the client asks nothing. Each run starts ``dcenter`` and two ``dworker
--no-nanny``, then a client process that does N sequential ``submit(inc, i).result()`` and
counts the requests it sent the center by op (the client's ``ask``, through which every
request goes), and the round trips' wall time; runs with the feature withheld by the client
(``DIST_PROTOCOL_FEATURES``: every other feature) alternate with runs with it.

    python benchmarks/worker_view_requests.py [--n 5000] [--pairs 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from procs import bare_cluster, stop_all

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

CLIENT = r'''
import collections, json, sys, time
import bench_tasks as t
from dist_client import Executor
ex = Executor(sys.argv[1])
n = int(sys.argv[2])
asked = collections.Counter()
ask = ex.core.ask
async def counted(make):
    asked[make(0).op] += 1
    return await ask(make)
ex.core.ask = counted
for i in range(50):
    ex.submit(t.inc, -i - 1).result()
asked.clear()
wall = time.perf_counter()
for i in range(n):
    assert ex.submit(t.inc, i).result() == i + 1
wall = time.perf_counter() - wall
print("RESULT " + json.dumps({"feature": ex.core.center_has("worker-events"),
                              "asked": dict(asked), "seconds": wall}), flush=True)
ex.close()
'''


def one_run(n: int, env: dict[str, str], with_feature: bool) -> dict:
    procs: list[subprocess.Popen] = []
    try:
        address = bare_cluster(BIN, env, procs)
        client_env = dict(env)
        if not with_feature:
            from dist_protocol.features import FEATURES
            client_env["DIST_PROTOCOL_FEATURES"] = ",".join(
                name for name in FEATURES if name != "worker-events")
        out = subprocess.run([sys.executable, "-c", CLIENT, address, str(n)], env=client_env,
                             capture_output=True, text=True, timeout=600, check=True)
        line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
        return json.loads(line[len("RESULT "):])
    finally:
        stop_all(procs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    print(f"{args.n} round trips a run, load {os.getloadavg()[0]:.1f}")
    for _ in range(args.pairs):
        for with_feature in (False, True):
            run = one_run(args.n, env, with_feature)
            print(f"  worker-events {'on ' if run['feature'] else 'off'}: "
                  f"{run['seconds']:.2f} s ({run['seconds'] / args.n * 1e6:.0f} µs a round "
                  f"trip), requests {run['asked'] or 'none'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
