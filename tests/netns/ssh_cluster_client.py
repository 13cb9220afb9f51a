"""Drives an ``SSHCluster`` from inside the client's host (see test_ssh_cluster.py):

    python ssh_cluster_client.py CONFIG_JSON

It starts the cluster, prints ``RESULT {json}``, then reads one command per line from stdin
(``walkthrough``, ``scale N``, ``registered``, ``forget-dead``, ``close``) and prints a
``RESULT`` for each.
"""
from __future__ import annotations

import json
import sys
import time

from dist_client import Executor
from dist_deploy import SSHCluster


def inc(x):
    return x + 1


def main() -> None:
    config = json.loads(sys.argv[1])
    cluster = SSHCluster(config["hosts"], connect_options=config["connect_options"],
                         worker_options=config["worker_options"],
                         center_options=config["center_options"],
                         remote_python=sys.executable)
    executor = Executor(cluster)

    def say(**result) -> None:
        print("RESULT " + json.dumps(result), flush=True)

    say(address=cluster.address, workers=cluster.worker_names, token=cluster.token)
    futures = []
    for line in sys.stdin:
        command, *args = line.split()
        if command == "walkthrough":
            futures = executor.map(inc, range(50))
            total = executor.submit(sum, futures)
            say(total=total.result(timeout=60), where=sorted(executor.has_what()))
        elif command == "scale":
            cluster.scale(int(args[0]))
            say(workers=cluster.worker_names)
        elif command == "registered":
            deadline = time.monotonic() + 60
            while len(executor.ncores()) != len(cluster.worker_names) and (
                    time.monotonic() < deadline):
                time.sleep(0.1)
            say(registered=sorted(w["name"] for w in cluster.link.workers()))
        elif command == "gather":
            say(values=executor.gather(futures, timeout=60))
        elif command == "forget-dead":
            deadline = time.monotonic() + float(args[0])
            gone: list[str] = []
            while not gone and time.monotonic() < deadline:
                gone = cluster.forget_dead()
                time.sleep(0.2)
            say(gone=gone, workers=cluster.worker_names)
        elif command == "close":
            executor.close()
            cluster.close()
            say(closed=cluster.status)
            return


if __name__ == "__main__":
    main()
