"""What an executor shows of itself: what is known here, never a round trip."""
from __future__ import annotations

from html import escape
from typing import Any


# repr shows what is known here: the workers as last listed (at connect, or by the last call
# that asked the center, e.g. ``ncores()``), never a round trip that could block.
def describe(kind: str, core: Any) -> str:
    """One line, under 80 characters for a cluster of a few workers, as dask's repr keeps
    it: a notebook or a log shows it whole."""
    if core.status != "running":
        return f"<{kind}: No scheduler connected ({core.status}; center {core.address})>"
    workers = core.workers_seen
    threads = sum(w["nthreads"] for w in workers)
    memory = _memory(workers)
    return (f"<{kind}: {core.address!r} workers={len(workers)} threads={threads}"
            f"{f' memory={memory}' if memory else ''} futures={core.held_count()}>")


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


# The HTML view lists this many workers at most: a cluster of hundreds would bury the totals.
HTML_WORKERS_SHOWN = 10


def describe_html(kind: str, core: Any) -> str:
    """The totals first, labelled as dask's widget labels them ("Total threads:", "Total
    memory:"), then a table of the workers."""
    if core.status != "running":
        return f"<b>{kind}</b>: No scheduler connected ({core.status}; center {core.address})"
    workers = core.workers_seen
    threads = sum(w["nthreads"] for w in workers)
    memory = _memory(workers) or "no limit"
    rows = "".join(
        f"<tr><td>{escape(str(w['name']))}</td><td>{escape(w['address'])}</td>"
        f"<td>{w['nthreads']}</td>"
        # (no metrics nor keys for a worker known from the center's events alone: 0 here)
        f"<td>{w.get('metrics', {}).get('memory', 0) / 2**20:.0f} MiB</td>"
        f"<td>{w.get('keys', 0)}</td></tr>" for w in workers[:HTML_WORKERS_SHOWN])
    hidden = len(workers) - HTML_WORKERS_SHOWN
    more = f"<p>and {hidden} more workers</p>" if hidden > 0 else ""
    return (f"<div><b>{kind}</b> connected to <code>{escape(core.address)}</code>"
            f"<p><strong>Workers: </strong>{len(workers)} "
            f"<strong>Total threads: </strong>{threads} "
            f"<strong>Total memory: </strong>{memory} "
            f"<strong>Futures: </strong>{core.held_count()}</p>"
            "<table><tr><th>name</th><th>address</th><th>threads</th><th>memory</th>"
            f"<th>keys</th></tr>{rows}</table>{more}</div>")
