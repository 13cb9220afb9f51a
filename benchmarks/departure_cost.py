"""What a client's departure costs the center's coordination, by the names the center keeps.

A long-lived center keeps every event log for its life (as dask keeps its events), and a
set ``Event`` or ``Variable`` until cleared. This fills the center's ``Coordination`` with
``--kept`` event logs of one entry each, then times ``--departures`` clients leaving, each
having subscribed to one topic and waited on one queue (its stakes), in one process, on the
state machine alone (no sockets: this is what the center's loop is held for).

    python benchmarks/departure_cost.py --kept 0,1000,10000,100000

Prints the median µs a departure for each count and writes every sample as JSON to
``--output`` (default ``benchmarks/results/departure-cost-<time>.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from dist_center.coordination import Coordination
from dist_protocol.messages import Coordinate
from dist_protocol.serialize import serialize

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kept", default="0,1000,10000,100000",
                        help="counts of event logs kept, comma-separated, ascending")
    parser.add_argument("--departures", type=int, default=50)
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    coordination = Coordination()
    entry = serialize({"n": 1}, ("msgpack",))
    results = []
    logged = 0
    for kept in (int(n) for n in args.kept.split(",")):
        while logged < kept:
            coordination.request("logger", Coordinate(id=logged, kind="log", name=f"log-{logged}",
                                                      action="append", value=entry))
            logged += 1
        samples = []
        for number in range(args.departures):
            client = f"client-{kept}-{number}"
            coordination.request(client, Coordinate(id=1, kind="topic", name="news",
                                                    action="subscribe"))
            coordination.request(client, Coordinate(id=2, kind="queue", name=f"q-{number}",
                                                    action="get", timeout=60.0))
            began = time.perf_counter()
            coordination.client_left(client)
            samples.append((time.perf_counter() - began) * 1e6)
        results.append({"kept": kept, "median_us": statistics.median(samples),
                        "samples_us": samples})
        print(f"{kept:>7,} logs kept: {statistics.median(samples):,.1f} µs a departure "
              f"(median of {args.departures}; load {os.getloadavg()[0]:.1f})", flush=True)
    output = args.output or os.path.join(
        RESULTS, time.strftime("departure-cost-%Y%m%dT%H%M%S.json", time.gmtime()))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as file:
        json.dump({"args": vars(args), "results": results}, file, indent=1)


if __name__ == "__main__":
    main()
