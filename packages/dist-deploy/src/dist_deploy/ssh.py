"""``SSHCluster``: the center on the first host, workers on the others, started with the
system ``ssh`` client (so its configuration, keys, agent and jump hosts apply as they do for
the user; no Python SSH library to install or trust).

The token goes to each process through ssh's standard input (``remote.BOOTSTRAP``), never on a
command line. Each process's output comes back over its ssh connection (``logs()``). Closing the
cluster, Ctrl-C, or this process dying closes those connections, and the far side stops what it
started; a worker cut off from its center gives up after ``death_timeout`` seconds.
"""
from __future__ import annotations

import atexit
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dist_client.cluster import Cluster
from dist_protocol.security import new_token

from .remote import RemoteProcess, bootstrap_command

START_TIMEOUT = 60.0
# ssh gives up on a connection whose far side stopped answering after about 15 s.
DEFAULT_SSH_OPTIONS = {"BatchMode": "yes", "ServerAliveInterval": "5", "ServerAliveCountMax": "3"}


def ssh_argv(host: str, connect_options: Mapping[str, Any], command: str) -> list[str]:
    """``ssh`` with the options (dask's names where it has them: ``username``, ``port``,
    ``client_keys``, ``known_hosts``; any other key is an ``ssh -o`` option) running
    ``command``."""
    options = dict(DEFAULT_SSH_OPTIONS)
    argv = ["ssh", "-T"]
    for key, value in connect_options.items():
        if key == "username":
            argv += ["-l", str(value)]
        elif key == "port":
            argv += ["-p", str(value)]
        elif key == "client_keys":
            for path in [value] if isinstance(value, str) else value:
                argv += ["-i", str(path)]
        elif key == "known_hosts":
            if value is None:  # as asyncssh: do not check host keys
                options.update(StrictHostKeyChecking="no", UserKnownHostsFile="/dev/null")
            else:
                options["UserKnownHostsFile"] = str(value)
        else:
            options[key] = str(value)
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    return [*argv, host, command]


def cli_options(options: Mapping[str, Any]) -> list[str]:
    """``{"nthreads": 2, "memory_limit": "4GB", "no_nanny": True}`` -> dworker/dcenter flags."""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        else:
            argv += [flag, str(value)]
    return argv


def host_of(destination: str) -> str:
    """``user@host`` -> ``host`` (the name the servers listen on and are reached at)."""
    return destination.rsplit("@", 1)[-1]


class SSHCluster(Cluster):
    """``SSHCluster(["center-host", "worker-1", "worker-2"])``: one worker per worker host to
    start with (``n_workers`` to change that); ``scale(n)`` spreads workers over the worker
    hosts, fewest first."""

    worker_prefix = "ssh"

    def __init__(self, hosts: Sequence[str], connect_options: Mapping[str, Any] | None = None,
                 worker_options: Mapping[str, Any] | None = None,
                 center_options: Mapping[str, Any] | None = None,
                 remote_python: str = "python3", n_workers: int | None = None,
                 death_timeout: float = 60.0, token: str | None = None):
        if len(hosts) < 2:
            raise ValueError("SSHCluster needs at least two hosts: the center's first, then "
                             "the workers'")
        worker_options = dict(worker_options or {})
        super().__init__(threads_per_worker=int(worker_options.get("nthreads", 1)))
        self.hosts = list(hosts)
        self.center_host = hosts[0]
        self.worker_hosts = list(hosts[1:])
        self.connect_options = dict(connect_options or {})
        self.worker_options = {"timeout": death_timeout, **worker_options}
        self.center_options = dict(center_options or {})
        self.remote_python = remote_python
        self.token = token or new_token()
        self.center: RemoteProcess | None = None
        self._per_host: dict[str, int] = {host: 0 for host in self.worker_hosts}
        self._host_of: dict[str, str] = {}  # worker name -> its host
        self._counter = itertools.count()
        atexit.register(self.close)
        try:
            self._start_center()
            self.status = "running"
            self.scale_up(len(self.worker_hosts) if n_workers is None else n_workers)
            self.wait_for_workers(len(self.workers))
        except BaseException:
            self.close()
            raise

    def _start_center(self) -> None:
        options = {"host": host_of(self.center_host), **self.center_options}
        argv = [self.remote_python, "-m", "dist_center.cli", *cli_options(options)]
        self.center = RemoteProcess(self._ssh(self.center_host, argv), "center", self.token)
        self.address = self.center.wait_for("Start center at ", START_TIMEOUT)

    def _ssh(self, host: str, argv: list[str]) -> list[str]:
        return ssh_argv(host, self.connect_options, bootstrap_command(self.remote_python, argv))

    def new_worker_name(self) -> str:
        host = min(self.worker_hosts, key=lambda h: (self._per_host[h],
                                                    self.worker_hosts.index(h)))
        name = f"{self.worker_prefix}-{_label(host_of(host))}-{next(self._counter)}"
        self._per_host[host] += 1
        self._host_of[name] = host
        return name

    def start_worker(self, name: str) -> RemoteProcess:
        host = self._host_of[name]
        options = {"host": host_of(host), **self.worker_options, "name": name}
        argv = [self.remote_python, "-m", "dist_worker.cli", self.address,
                *cli_options(options)]
        return RemoteProcess(self._ssh(host, argv), name, self.token)

    def stop_worker(self, name: str, handle: RemoteProcess) -> None:
        handle.stop()
        host = self._host_of.pop(name, None)
        if host is not None:
            self._per_host[host] -= 1

    def worker_gone(self, name: str, handle: RemoteProcess) -> bool:
        return not handle.running

    def wait_for_workers(self, n: int, timeout: float = START_TIMEOUT) -> None:
        """Until ``n`` of this cluster's workers have registered."""
        for handle in list(self.workers.values())[:n]:
            handle.wait_for("Registered with center at: ", timeout)

    def stop_center(self) -> None:
        if self.center is not None:
            self.center.stop()
            self.center = None

    def logs(self) -> dict[str, list[str]]:
        """The last lines each process printed (its log), by name: ``center`` and workers."""
        out = {"center": list(self.center.lines)} if self.center is not None else {}
        out.update({name: list(handle.lines) for name, handle in self.workers.items()})
        return out

    def close(self) -> None:
        super().close()
        atexit.unregister(self.close)


def _label(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", host).strip("-") or "host"
