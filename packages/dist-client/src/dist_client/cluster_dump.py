"""``Executor.dump_cluster_state``: what the center and the workers report, gathered by the
client in dask's layout (``{"scheduler": ..., "workers": {address: ...}, "versions":
...}``) and written to a file, for a bug report or a look afterwards.

The center runs no user code and writes no files for clients, so the client asks the
questions it can ask of any cluster -- the workers and their state, who holds this client's
keys, the stories of those keys, the versions -- and writes the answers itself. A task's
state is the last one its story records: the center's under ``"scheduler"``, each worker's
under that worker."""
from __future__ import annotations

import gzip
import os
from collections.abc import Collection
from typing import Any

import msgpack

from .core import operations
from .core.client import ClientCore
from .errors import ClusterError

# The file name's ending for each format, as dask's (``load_cluster_dump`` reads both).
SUFFIXES = {"msgpack": ".msgpack.gz", "yaml": ".yaml"}


def target(filename: str | os.PathLike, format: str, write_from_scheduler: bool | None) -> str:
    """Where the dump goes, checked before anything is asked of the cluster."""
    if format not in SUFFIXES:
        raise ValueError(f"Unsupported format {format!r}: dump_cluster_state writes "
                         f"{' or '.join(map(repr, SUFFIXES))}")
    if write_from_scheduler:
        raise ValueError("write_from_scheduler=True: dist's center writes no files for "
                         "clients; the client writes the dump (to a URL too, with fsspec)")
    path = os.fspath(filename)
    return path if path.endswith(SUFFIXES[format]) else path + SUFFIXES[format]


async def collect(core: ClientCore, exclude: Collection[str] = ()) -> dict[str, Any]:
    info = await operations.cluster_info(core)
    versions = await operations.versions(core)
    with core.lock:
        held = dict(core.state.held_states())
    keys = list(held)
    who_has = await core.data.who_has(keys) if keys else {}
    entries = await _stories(core, keys)
    last_center: dict[str, str] = {}
    last_on_worker: dict[str, dict[str, str]] = {}
    for entry in entries:  # oldest first: the last one seen is the state now
        where = entry.get("worker") or ""
        if where:
            last_on_worker.setdefault(where, {})[entry["key"]] = entry["finish"]
        else:
            last_center[entry["key"]] = entry["finish"]
    running = {w["address"]: w.get("processing_keys", []) for w in core.workers_seen}
    processing_on = {key: address for address, running_keys in running.items()
                     for key in running_keys}
    tasks = {}
    for key, known in held.items():
        tasks[key] = {"key": key, "state": last_center.get(key, known.status),
                      "client_status": known.status, "who_has": who_has.get(key, []),
                      "processing_on": processing_on.get(key), "nbytes": known.nbytes,
                      "type": known.type,
                      "exception": repr(known.exception) if known.exception else None,
                      "traceback": known.traceback or None}
    workers = {}
    for address, worker in info["workers"].items():
        on_worker = last_on_worker.get(address, {})
        workers[address] = {**worker, "processing_keys": running.get(address, []), "tasks": {
            key: _without({"key": key, "state": finish}, exclude)
            for key, finish in on_worker.items()}}
    center = {key: value for key, value in info.items() if key != "workers"}
    center.update(workers=list(info["workers"]), client=core.id,
                  tasks={key: _without(task, exclude) for key, task in tasks.items()})
    state = {"scheduler": _without(center, exclude),
             "workers": {address: _without(worker, exclude)
                         for address, worker in workers.items()},
             "versions": {"scheduler": versions.get("center"),
                          "workers": versions.get("workers", {}),
                          "client": versions.get("client")}}
    # Plain lists and maps: a tuple would be written as a Python-only tag in YAML.
    return msgpack.unpackb(msgpack.packb(state, default=repr), strict_map_key=False)


async def _stories(core: ClientCore, keys: list[str]) -> list[dict[str, Any]]:
    if not keys:
        return []
    try:
        return await operations.story(core, tuple(keys))
    except ClusterError:  # an older center keeps no stories: the client's view is all
        return []


def _without(fields: dict[str, Any], exclude: Collection[str]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name not in exclude}


def write(state: dict[str, Any], path: str, format: str, storage_options: dict) -> None:
    """To a local path, or with fsspec to a URL (``s3://...``, ``file://...``)."""
    if format == "msgpack":
        data = gzip.compress(msgpack.packb(state))
    else:
        try:
            import yaml
        except ImportError:
            raise ImportError("dump_cluster_state(format='yaml') needs PyYAML (pip install "
                              "pyyaml); format='msgpack' needs nothing more") from None
        data = yaml.safe_dump(state).encode()
    if "://" not in path:
        with open(path, "wb") as file:
            file.write(data)
        return
    try:
        import fsspec
    except ImportError:
        raise ImportError(f"dump_cluster_state to {path!r}, a URL, needs fsspec (pip install "
                          "fsspec); a local path needs nothing more") from None
    with fsspec.open(path, "wb", **storage_options) as file:
        file.write(data)
