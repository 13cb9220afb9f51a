"""What an executor shows of itself: what is known here, never a round trip."""
from __future__ import annotations

from typing import Any


# repr shows what is known here: the workers as last listed (at connect, or by the last call
# that asked the center, e.g. ``ncores()``), never a round trip that could block.
def describe(kind: str, core: Any) -> str:
    if core.status != "running":
        return f"<{kind}: {core.address} ({core.status})>"
    workers = core.workers_seen
    threads = sum(w["nthreads"] for w in workers)
    memory = _memory(workers)
    return (f"<{kind}: center={core.address!r} workers={len(workers)} threads={threads} "
            f"futures={core.held_count()}{f' memory={memory}' if memory else ''}>")


def _memory(workers: list[dict]) -> str:
    """The workers' memory limits added up, as dask's repr shows them (empty if none has
    one: then there is no total to show)."""
    limits = [w.get("memory_limit") or 0 for w in workers]
    if not limits or not all(limits):
        return ""
    return binary_size(sum(limits))


def binary_size(n: float) -> str:
    """``n`` bytes in binary units, to two decimals: ``12.00 GiB``."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("kiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.2f} {unit}"
    return f"{n / 1024:.2f} TiB"


def describe_html(kind: str, core: Any) -> str:
    if core.status != "running":
        return f"<b>{kind}</b>: {core.address} ({core.status})"
    workers = core.workers_seen
    rows = "".join(
        f"<tr><td>{w['name']}</td><td>{w['address']}</td><td>{w['nthreads']}</td>"
        f"<td>{w['metrics'].get('memory', 0) / 2**20:.0f} MiB</td>"
        f"<td>{w['keys']}</td></tr>" for w in workers)
    threads = sum(w["nthreads"] for w in workers)
    memory = _memory(workers)
    return (f"<div><b>{kind}</b> connected to <code>{core.address}</code>: "
            f"{len(workers)} workers, {threads} threads, {core.held_count()} futures"
            f"{f', {memory} of memory' if memory else ''}"
            "<table><tr><th>name</th><th>address</th><th>threads</th><th>memory</th>"
            f"<th>keys</th></tr>{rows}</table></div>")
