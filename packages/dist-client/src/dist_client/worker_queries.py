"""What the workers are doing now, asked through the center when the user asks
(``worker-query``): ``Future.running()``, dask's ``call_stack``, ``profile``,
``get_worker_logs`` and ``get_scheduler_logs``. Nothing about a task's start is sent while
it runs, so a map pays nothing for these: each question is one round trip to the workers.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from dist_protocol.key_names import user_key, wire_key
from dist_protocol.messages import WorkerQuery

from .errors import ClusterError


async def ask(core: Any, what: str, keys: list[str] | None = None,
              workers: list[str] | None = None, n: int | None = None) -> dict[str, Any]:
    """{worker address (``""``: the center): its answer}."""
    center = core.center
    if center is not None and "worker-query" not in center.features:
        raise ClusterError(f"the center at {core.address} cannot ask its workers what they run "
                           "(an older release: it did not announce the protocol feature "
                           "'worker-query')")
    reply = await core.ask(lambda i: WorkerQuery(id=i, what=what, keys=keys, workers=workers,
                                                 n=n))
    return reply.answers


async def running(core: Any, name: str) -> bool:
    """Whether the call of the task ``name`` runs on a worker now."""
    answers = await ask(core, "executing", keys=[name])
    return any(name in (keys or ()) for keys in answers.values())


def key_names(futures: Any = None, keys: Iterable[Hashable] | None = None) -> list[str] | None:
    """The cluster's names of the keys of ``futures`` and ``keys`` (None: every key)."""
    if futures is None and keys is None:
        return None
    names = []
    if futures is not None:
        from .packing import futures_of
        names += [future.name for future in futures_of(futures)]
    if keys is not None:
        names += [wire_key(key) for key in keys]
    return names


async def call_stack(core: Any, names: list[str] | None) -> dict[str, dict[Hashable, list[str]]]:
    """{worker: {key: the lines of its thread's stack}} for the calls running now, as dask's
    ``call_stack``: workers running none of them are left out."""
    answers = await ask(core, "call-stack", keys=names)
    return {address: {user_key(name): lines for name, lines in stacks.items()}
            for address, stacks in answers.items() if stacks}


async def worker_logs(core: Any, n: int | None,
                      workers: list[str] | None) -> dict[str, list[tuple[str, str]]]:
    answers = await ask(core, "logs", workers=workers, n=n)
    return {address: [(level, line) for level, line in lines or ()]
            for address, lines in answers.items()}


async def center_logs(core: Any, n: int | None) -> list[tuple[str, str]]:
    answers = await ask(core, "center-logs", n=n)
    return [(level, line) for level, line in answers.get("", ())]


def profile_of(stacks: dict[str, dict[Hashable, list[str]]]) -> dict[str, Any]:
    """The stacks sampled once, as dask's profile tree: each node ``count`` (samples through
    it), ``description`` and ``children`` by identifier."""
    root: dict[str, Any] = {"count": 0, "identifier": "root", "description": {
        "filename": "", "name": "", "line_number": 0, "line": ""}, "children": {}}
    for by_key in stacks.values():
        for lines in by_key.values():
            root["count"] += 1
            node = root
            for line in lines:
                where, _, code = line.strip("\n").partition("\n")
                identifier = where.strip()
                child = node["children"].get(identifier)
                if child is None:
                    child = node["children"][identifier] = {
                        "count": 0, "identifier": identifier, "children": {},
                        "description": _described(where, code)}
                child["count"] += 1
                node = child
    return root


def _described(where: str, code: str) -> dict[str, Any]:
    # '  File "f.py", line 3, in name'
    filename, _, rest = where.strip().removeprefix('File "').partition('", line ')
    number, _, name = rest.partition(", in ")
    return {"filename": filename, "name": name,
            "line_number": int(number) if number.isdigit() else 0, "line": code.strip()}


__all__ = ["ask", "call_stack", "center_logs", "key_names", "profile_of", "running",
           "worker_logs"]
