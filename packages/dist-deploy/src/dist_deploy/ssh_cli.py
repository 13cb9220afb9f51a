"""``dist-ssh HOST [HOST...]``: a cluster over SSH until Ctrl-C -- the center on the first
host, a worker on each of the others (``SSHCluster``)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from dist_protocol.security import new_token

from .ssh import SSHCluster

DEFAULT_TOKEN_FILE = Path.home() / ".dist-ssh-token"


def token_from(path: Path) -> str:
    """The token in ``path``, or a new one written there readable by this user alone."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = new_token()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dist-ssh", description=__doc__)
    p.add_argument("hosts", nargs="+", metavar="HOST",
                   help="the center's host, then the workers' ([user@]host)")
    p.add_argument("--nthreads", type=int, default=1, help="threads per worker")
    p.add_argument("--n-workers", type=int, default=None,
                   help="workers in all, spread over the worker hosts [one per host]")
    p.add_argument("--memory-limit", default=None, help="per worker: 4GB, 0.5, auto")
    p.add_argument("--center-port", type=int, default=8787)
    p.add_argument("--dashboard-port", type=int, default=8788)
    p.add_argument("--death-timeout", type=float, default=60.0,
                   help="seconds a worker waits for a lost center before it exits")
    p.add_argument("--remote-python", default="python3",
                   help="the Python on the hosts that has dist-center and dist-worker")
    p.add_argument("--token-file", type=Path, default=None,
                   help=f"the cluster's token: read, or created (mode 0600) when missing "
                        f"[default: $DIST_TOKEN, else {DEFAULT_TOKEN_FILE}]")
    p.add_argument("-i", "--identity", action="append", default=[],
                   help="an ssh private key (as ssh -i; repeatable)")
    p.add_argument("-o", "--ssh-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an ssh -o option (repeatable)")
    p.add_argument("-p", "--ssh-port", type=int, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if len(args.hosts) < 2:
        print("dist-ssh: give the center's host and at least one worker host", file=sys.stderr)
        return 2
    token_file = args.token_file
    token = None if token_file else os.environ.get("DIST_TOKEN")
    if not token:
        token_file = token_file or DEFAULT_TOKEN_FILE
        token = token_from(token_file)
    connect: dict = {}
    for option in args.ssh_option:
        key, _, value = option.partition("=")
        connect[key] = value
    if args.identity:
        connect["client_keys"] = args.identity
    if args.ssh_port:
        connect["port"] = args.ssh_port
    worker_options = {"nthreads": args.nthreads, "memory_limit": args.memory_limit}
    center_options = {"port": args.center_port, "dashboard_port": args.dashboard_port}
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda *_: stop.set())
    try:
        cluster = SSHCluster(args.hosts, connect_options=connect, worker_options=worker_options,
                             center_options=center_options, remote_python=args.remote_python,
                             n_workers=args.n_workers, death_timeout=args.death_timeout,
                             token=token)
    except (RuntimeError, OSError) as exc:
        print(f"dist-ssh: {exc}", file=sys.stderr)
        return 1
    with cluster:
        print(f"Center at {cluster.address}", flush=True)
        print(f"Workers: {', '.join(cluster.worker_names)}", flush=True)
        if token_file is not None:
            print(f"Token in {token_file} (clients: DIST_TOKEN_FILE={token_file})", flush=True)
        while not stop.wait(1.0):
            for name in cluster.forget_dead():
                print(f"worker {name} ended", flush=True)
        print("Stopping the cluster", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
