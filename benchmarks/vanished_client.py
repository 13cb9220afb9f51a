"""A client whose host vanishes in the middle of a gather: how long the worker holds the reply.

A client killed on a live host has its kernel close its connections, and the center and the
workers let go of what it held at once (``departed_clients.py``). A host that vanishes (power
lost, a cable pulled, a firewall or NAT that forgot the connection) sends nothing more: the
servers find out from TCP alone. This runs, in a network namespace of its own (Linux, as
root: ``unshare --net``, so that nothing outside it is touched), a real ``dcenter`` and a
``dworker --no-nanny`` holding a ``--megabytes`` value, and in a namespace of its own, joined
to theirs by a virtual cable of ``--mbit`` megabits a second, a client gathering that value.
Two seconds into the reply the client's end of the cable goes down and the client is
killed, as if its host had gone. Every ``--every`` seconds it prints the worker's and the
center's connections to the client and the worker's RSS, and at the end when each let go.

    sudo python benchmarks/vanished_client.py                  # up to --limit (1,200) s
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil

from servers import command, start, stop

CLIENT = r'''
import os, socket, subprocess, sys, threading, time
print("in a namespace of its own", flush=True)
while "v1" not in (name for _, name in socket.if_nameindex()):  # (moved here by the parent)
    time.sleep(0.05)
for step in (["ip", "addr", "add", "10.77.0.2/24", "dev", "v1"], ["ip", "link", "set", "v1", "up"],
             ["ip", "link", "set", "lo", "up"]):
    subprocess.run(step, check=True)
from dist_client import Executor, wait
e = Executor(sys.argv[1])
value = e.submit(os.urandom, int(sys.argv[2]), pure=False)  # (not compressible)
wait(value)
threading.Thread(target=lambda: e.gather(value), daemon=True).start()
import psutil
me = psutil.Process()
while len(me.net_connections("tcp")) < 2:  # the center's and the worker's
    time.sleep(0.05)
time.sleep(2)
print(" ".join(str(c.laddr.port) for c in me.net_connections("tcp")), flush=True)
time.sleep(3600)
'''


def client_connections(pid: int, ports: set[int]) -> int:
    return sum(1 for c in psutil.Process(pid).net_connections("tcp")
               if c.raddr and c.raddr.port in ports)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--mbit", type=int, default=100, help="the cable's speed")
    parser.add_argument("--limit", type=float, default=1200.0, help="seconds to watch at most")
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:
        return subprocess.call(["unshare", "--net", sys.executable, *sys.argv, "--inside"])
    # The servers' namespace (this one) and the client's, joined by a virtual cable.
    ip("link", "set", "lo", "up")
    ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
    ip("addr", "add", "10.77.0.1/24", "dev", "v0")
    ip("link", "set", "v0", "up")
    # (a slow cable, so that the reply is still on its way when the host goes)
    subprocess.run(["tc", "qdisc", "add", "dev", "v0", "root", "tbf", "rate",
                    f"{args.mbit}mbit", "burst", "32kbit", "latency", "400ms"], check=True)
    # (listening on an address other hosts could reach, without a token: the namespace
    # is the cable's only other end)
    served = ["--host", "10.77.0.1", "--no-auth"]
    center_proc, center = start(command("dcenter") + served + ["--port", "0", "--no-dashboard"],
                                "Start center at ")
    worker_proc = client = None
    try:
        worker_proc, worker = start(command("dworker") + [center, "--nthreads", "1",
                                                          "--no-nanny", *served],
                                    "Start worker at ")
        client = subprocess.Popen(["unshare", "--net", sys.executable, "-c", CLIENT, center,
                                   str(args.megabytes * 2**20)],
                                  stdout=subprocess.PIPE, text=True)
        client.stdout.readline()
        ip("link", "set", "v1", "netns", str(client.pid))  # (unshare execs: the same pid)
        ports = {int(port) for port in client.stdout.readline().split()}
        # The host vanishes in the middle of the reply: its end of the cable goes down, then
        # the process, whose kernel's closing words go nowhere.
        subprocess.run(["nsenter", "-t", str(client.pid), "-n", "ip", "link", "set", "v1",
                        "down"], check=True)
        client.kill()
        client.wait()
        began = time.monotonic()
        gone: dict[str, float] = {}
        while time.monotonic() - began < args.limit and len(gone) < 2:
            now = time.monotonic() - began
            held = {role: client_connections(proc.pid, ports)
                    for role, proc in (("worker", worker_proc), ("center", center_proc))}
            for role, count in held.items():
                if not count and role not in gone:
                    gone[role] = now
            rss = psutil.Process(worker_proc.pid).memory_info().rss / 2**20
            print(f"{now:6.0f} s: worker {held['worker']} connection(s) to the client, RSS "
                  f"{rss:.0f} MB; center {held['center']}", flush=True)
            time.sleep(args.every)
        for role in ("worker", "center"):
            print(f"{role}: " + (f"let go after {gone[role]:.0f} s" if role in gone
                                 else f"still held after {args.limit:.0f} s"))
        return 0
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        if worker_proc is not None:
            stop(worker_proc)
        stop(center_proc)


if __name__ == "__main__":
    sys.exit(main())
