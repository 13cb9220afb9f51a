"""What the client knows of the Python and package versions in its cluster, and the checks that
keep pickled code away from workers on another Python minor version. No I/O: the executor
feeds it the center's ``welcome``, and either its worker events (feature ``worker-events``:
the view is then always current) or its ``cluster-info`` replies.

Why: functions pickled by value are bytecode, which changes between Python minor versions; a
worker unpickling another version's bytecode can segfault or compute a wrong result. Workers
refuse such tasks themselves (the task carries ``pickled_with``), but the user should learn it
from ``Executor()`` or ``submit``, with both versions named, before anything is sent.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from dist_protocol.environment import (describe, describe_tag, local_environment,
                                       package_differences, pickle_tag)
from dist_protocol.messages import Environment
from dist_protocol.serialize import Payload, SerializationError, holds_code

from .errors import EnvironmentMismatch

# How old the client's view of the workers' environments may be when it submits pickled code.
REFRESH_SECONDS = 1.0
# How old it may be before a submit has it refreshed in the background: a client that submits
# steadily gets the new view before the old one is too old, and never waits for it.
REFRESH_AHEAD_SECONDS = 0.75


def environment_from(value: Any) -> Environment | None:
    """An ``Environment`` from its map form (cluster-info), or None when absent or malformed."""
    if not isinstance(value, dict):
        return None
    implementation, python = value.get("implementation"), value.get("python")
    packages = value.get("packages") or {}
    if not isinstance(implementation, str) or not isinstance(python, str):
        return None
    return Environment(implementation=implementation, python=python,
                       packages={k: v for k, v in packages.items()
                                 if isinstance(k, str) and isinstance(v, str)})


def worker_entry_from(value: Any) -> dict[str, Any] | None:
    """A worker's map from ``worker-list`` or ``worker-added`` with the fields this client
    reads, of the right types; None when it names no address (the center broke the rules)."""
    if not isinstance(value, dict) or not isinstance(value.get("address"), str):
        return None
    address = value["address"]
    name, nthreads, limit = value.get("name"), value.get("nthreads"), value.get("memory_limit")
    return {**value, "name": name if isinstance(name, str) and name else address,
            "nthreads": nthreads if isinstance(nthreads, int) else 0,
            "memory_limit": limit if isinstance(limit, int) else 0}


class ClusterEnvironments:
    def __init__(self, client: Environment | None = None):
        self.client = client or local_environment()
        self.tag = pickle_tag(self.client)
        self.center: Environment | None = None
        self.workers: dict[str, Environment | None] = {}  # address -> what it said it runs
        self._foreign: dict[str, Environment] = {}  # those of them on another Python
        self.names: dict[str, str] = {}  # worker name -> address
        self.updated: float | None = None
        # Told of every worker joining and leaving (feature ``worker-events``): never stale.
        self.fed = False
        self._warned: set[tuple[str, str]] = set()  # (package, version) already warned about
        self._warned_pythons: set[str] = set()  # the tags of other Pythons warned about

    def update(self, worker_table: list[dict], now: float) -> None:
        self.workers = {w["address"]: environment_from(w.get("environment"))
                        for w in worker_table}
        self.names = {w["name"]: w["address"] for w in worker_table if w.get("name")}
        self.updated = now
        # Worked out once per refresh, not for every task submitted.
        self._foreign = {address: env for address, env in self.workers.items()
                         if env is not None and pickle_tag(env) != self.tag}

    def listed(self, entries: list[dict[str, Any]], now: float) -> None:
        """The center's ``worker-list``: from now on its events keep this view current."""
        self.update(entries, now)
        self.fed = True

    def added(self, entry: dict[str, Any]) -> None:
        """``worker-added``: a worker registered (perhaps again, under the same address)."""
        self.removed(entry["address"])
        address, env = entry["address"], environment_from(entry.get("environment"))
        # New maps rather than changed ones: submitting threads read them meanwhile.
        self.workers = {**self.workers, address: env}
        if entry.get("name"):
            self.names = {**self.names, entry["name"]: address}
        if env is not None and pickle_tag(env) != self.tag:
            self._foreign = {**self._foreign, address: env}

    def removed(self, address: str) -> None:
        """``worker-removed``: a worker left."""
        if address not in self.workers:
            return
        self.workers = {a: env for a, env in self.workers.items() if a != address}
        self._foreign = {a: env for a, env in self._foreign.items() if a != address}
        self.names = {name: a for name, a in self.names.items() if a != address}

    def connection_lost(self) -> None:
        """No events come until a connection lists the workers again."""
        self.fed = False

    def stale(self, now: float) -> bool:
        return self.updated is None or now - self.updated > REFRESH_SECONDS

    def refresh_due(self, now: float) -> str | None:
        """How a submit of pickled code at ``now`` has the view refreshed: ``"wait"`` for it
        (stale), ``"ahead"`` in the background (still good enough for this submit), or not
        at all (None: always where the center's events keep the view current)."""
        if self.fed:
            return None
        if self.stale(now):
            return "wait"
        assert self.updated is not None
        return "ahead" if now - self.updated > REFRESH_AHEAD_SECONDS else None

    def foreign(self) -> dict[str, Environment]:
        """Workers on another Python (implementation or minor version) than this client."""
        return self._foreign

    def _versions_text(self, addresses: list[str]) -> str:
        shown = ", ".join(f"{a} runs {describe(self.workers.get(a))}" for a in addresses[:5])
        more = f" and {len(addresses) - 5} more" if len(addresses) > 5 else ""
        return shown + more

    def new_python_differences(self) -> str | None:
        """One line naming the workers on another Python (implementation or minor version)
        than this client, once per such Python, as dask warns of mismatched versions as a
        client connects: what pickles here cannot run there, and what can."""
        fresh = {tag for tag in map(pickle_tag, self._foreign.values())
                 if tag not in self._warned_pythons}
        if not fresh:
            return None
        self._warned_pythons |= fresh
        foreign = sorted(self._foreign)
        compatible = sorted(set(self.workers) - self._foreign.keys())
        where = (f"workers={compatible[:3]}{'...' if len(compatible) > 3 else ''}"
                 if compatible else "none in this cluster yet")
        return (f"this client runs {describe(self.client)} and workers of the cluster run "
                f"another Python ({self._versions_text(foreign)}): a function or class "
                f"pickled by value here (a lambda, a closure, anything defined in __main__) "
                f"runs only on workers of {describe_tag(self.tag)} ({where}) and is refused at "
                f"submit; functions importable there by name, with data arguments, run on "
                f"every worker")

    def check_submit(self, workers: list[str] | None, allow_other_workers: bool) -> None:
        """Before pickled code is sent: every worker the task may land on runs our Python."""
        foreign = self.foreign()
        if not foreign:
            return
        if workers and not allow_other_workers:
            allowed = {self.names.get(w, w) for w in workers}
            if not allowed & foreign.keys():
                return
        raise EnvironmentMismatch(
            f"this client runs {describe(self.client)} and the cluster mixes Python versions "
            f"({self._versions_text(sorted(foreign))}): a function or argument pickled here "
            f"must not run there, so nothing was sent{self._restrict_hint('restrict the task to')}")

    def _restrict_hint(self, doing: str) -> str:
        """How to reach only the workers on this client's Python, if there are any."""
        compatible = sorted(set(self.workers) - self.foreign().keys())
        if not compatible:
            return ""
        return (f"; {doing} the workers on {describe_tag(self.tag)} with "
                f"workers={compatible[:3]}{'...' if len(compatible) > 3 else ''}")

    def tag_of(self, payload: Payload, features: frozenset[str]) -> str | None:
        """The ``pickled_with`` of a value this client puts on the center for others to read
        (feature ``pickled-values``): its tag for a pickle, nothing for data any reader
        reads."""
        if payload.serializer != "pickle" or "pickled-values" not in features:
            return None
        return self.tag

    def check_shared(self, payload: Payload, pickled_with: str | None, what: str) -> None:
        """Before a value another process put on the center (``what``: a queue's, a
        variable's, a topic's, a dataset's) is read here: ``SerializationError`` when it was
        pickled by another Python minor version and holds Python code, whose bytecode can
        crash this process or compute wrong results there; data crosses as usual."""
        if pickled_with is None or pickled_with == self.tag or not holds_code(payload):
            return
        raise SerializationError(
            f"{what} was pickled on {describe_tag(pickled_with)} and holds Python code (a "
            f"function, or a class's methods, pickled by value), which this process, on "
            f"{describe(self.client)}, does not run: bytecode differs between Python "
            f"versions. Share plain data across Pythons, or read it on "
            f"{describe_tag(pickled_with)}")

    def builds_code_from(self, holders: tuple[str, ...] | list[str]) -> bool:
        """Whether a pickle a key's ``holders`` made (its class, as ``key-in-memory`` sends
        it) may have its Python code built here: not when one of them, or, with none known,
        any worker, runs another Python minor version, whose bytecode can crash this
        process or compute wrong results."""
        foreign = self._foreign
        if not foreign:
            return True
        if not holders:
            return False
        return not any(address in foreign for address in holders)

    def check_targets(self, addresses: list[str]) -> None:
        """Before pickled data is pushed to these workers."""
        foreign = sorted(set(addresses) & self.foreign().keys())
        if foreign:
            raise EnvironmentMismatch(
                f"this client runs {describe(self.client)}; data pickled here is not sent to "
                f"workers on another Python minor version ({self._versions_text(foreign)})"
                f"{self._restrict_hint('scatter to')}")

    def new_differences(self) -> list[str]:
        """What to warn of, once each: other Pythons, then other package versions."""
        return [text for text in (self.new_python_differences(),
                                  self.new_package_differences()) if text]

    def new_package_differences(self) -> str | None:
        """One line naming each package whose version differs between this client, the center
        and the workers, once per package and version."""
        differences = package_differences(self.everyone())
        fresh = []
        for package, seen in differences.items():
            pairs = {(package, version) for version in seen.values()}
            if pairs <= self._warned:
                continue
            self._warned |= pairs
            by_version: dict[str, list[str]] = {}
            for who, version in seen.items():
                by_version.setdefault(version, []).append(who)
            fresh.append(f"{package} " + ", ".join(
                f"{version} ({', '.join(whos[:3])}{' ...' if len(whos) > 3 else ''})"
                for version, whos in by_version.items()))
        if not fresh:
            return None
        return "the cluster runs different package versions: " + "; ".join(fresh)

    def everyone(self) -> dict[str, Environment | None]:
        return {"client": self.client, "center": self.center, **self.workers}

    def versions(self) -> dict[str, Any]:
        def plain(env: Environment | None) -> dict | None:
            return None if env is None else dataclasses.asdict(env)
        return {"client": plain(self.client), "center": plain(self.center),
                "workers": {address: plain(env) for address, env in self.workers.items()}}

    def mismatches(self) -> list[str]:
        """Every difference that ``versions(check=True)`` refuses."""
        out = [f"{address} runs {describe(env)}, the client {describe(self.client)}"
               for address, env in sorted(self.foreign().items())]
        for package, seen in package_differences(self.everyone()).items():
            out.append(f"{package}: " + ", ".join(f"{who} {v}" for who, v in seen.items()))
        return out
