"""``performance_report``: dask's context manager that writes what ran inside a block to one
HTML file when the block ends::

    with performance_report(filename="dask-report.html"):
        x.compute()

The page stands alone (no script, no network): a summary by task prefix, the task stream as
an inline SVG timeline per worker thread, the transfers between workers, and the calling
code. It is built from the center's task stream (``get_task_stream``), so it holds the runs
the center recorded between entering and leaving the block."""
from __future__ import annotations

import colorsys
import html
import importlib
import inspect
import os
import sys
import time
import zlib
from collections import defaultdict
from typing import IO, Any

from . import task_stream

# bokeh's ``output_file`` modes, which dask passes ``mode`` to: accepted so that dask code runs;
# the page here is always self-contained, so none of them changes it.
MODES = frozenset({"inline", "cdn", "server", "server-dev", "relative", "relative-dev",
                   "absolute", "absolute-dev"})
NO_CODE = "<Code not available>"
TIMELINE_WIDTH = 1000  # px of the SVG's time axis
LANE_HEIGHT = 18  # px per worker thread


class performance_report:  # noqa: N801 -- dask's name, a context manager as there
    """Write the task runs of the block to ``filename`` when it ends, also when it raises.

    ``stacklevel`` picks the frame whose code the report shows (1: the one with the
    ``with``); ``storage_options`` go to ``fsspec.open`` for a URL (``s3://...``); a local
    name ending in ``.gz``, ``.bz2`` or ``.xz`` is compressed. On the default executor, or
    ``executor``."""

    def __init__(self, filename: str | os.PathLike[str] = "dask-report.html",
                 stacklevel: int = 1, mode: str | None = None,
                 storage_options: dict[str, Any] | None = None, *, executor: Any = None):
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename must be a path, not {filename!r}")
        if not isinstance(stacklevel, int) or isinstance(stacklevel, bool):
            raise TypeError(f"stacklevel must be an int, not {stacklevel!r}")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)} or None, not {mode!r}")
        if storage_options is not None and not isinstance(storage_options, dict):
            raise TypeError(f"storage_options must be a dict, not {storage_options!r}")
        self.filename = os.fspath(filename)
        self.mode = mode
        self.storage_options = storage_options or {}
        # As dask: 0 or less would show this module's own frames.
        self._stacklevel = max(stacklevel, 1)
        self._executor = executor
        self._cursor = 0  # the center's count of recorded runs when the block began
        self._start = 0.0

    def _core(self) -> Any:
        if self._executor is None:  # the default one when the block begins, as dask's
            from .current import default_executor
            self._executor = default_executor()
        return self._executor.core

    def __enter__(self) -> None:
        core = self._core()
        self._cursor, _ = core.run(task_stream.fetch(core, task_stream.request(count=0)))
        self._start = time.time()

    def __exit__(self, *exc_info: Any) -> None:
        code = calling_code(self._stacklevel)
        core = self._core()
        self._write(code, *core.run(task_stream.fetch(
            core, task_stream.request(after=self._cursor))))

    async def __aenter__(self) -> None:
        core = self._core()
        self._cursor, _ = await core.call(task_stream.fetch(core, task_stream.request(count=0)))
        self._start = time.time()

    async def __aexit__(self, *exc_info: Any) -> None:
        # A coroutine being awaited has its caller's frame behind it, as a function has.
        code = calling_code(self._stacklevel)
        core = self._core()
        self._write(code, *await core.call(task_stream.fetch(
            core, task_stream.request(after=self._cursor))))

    def _write(self, code: str, cursor: int, records: list[dict[str, Any]]) -> None:
        # The center keeps only its newest runs: those of a longer block are partly gone.
        # (A center started again counts from 0: then nothing is known to be missing.)
        left_out = max(0, cursor - self._cursor - len(records))
        page = render(records, self._start, time.time(), code, left_out)
        with open_for_writing(self.filename, self.storage_options) as file:
            file.write(page)


def calling_code(stacklevel: int) -> str:
    """The source of the function (or whole module) running ``stacklevel`` frames above
    the caller of this, as dask shows it; a stack less deep than that has none to show,
    and the report is written all the same."""
    try:
        return inspect.getsource(sys._getframe(stacklevel + 1).f_code)
    except (ValueError, OSError, TypeError):  # too deep; typed at a prompt, or exec'd
        return NO_CODE


# Imported when used: importing dist_client loads no compressor.
_COMPRESSORS = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}


def open_for_writing(filename: str, storage_options: dict[str, Any]) -> IO[str]:
    if "://" in filename or storage_options:
        try:
            import fsspec
        except ImportError:
            raise ImportError(f"writing the report to {filename!r} with storage_options "
                              "needs fsspec: pip install fsspec") from None
        # ``OpenFile.open`` gives a file that closes what it wraps (compressor, connection).
        return fsspec.open(filename, mode="w", compression="infer", **storage_options).open()
    compressor = _COMPRESSORS.get(os.path.splitext(filename)[1].lower())
    if compressor is not None:
        file: IO[str] = importlib.import_module(compressor).open(filename, "wt",
                                                                 encoding="utf-8")
        return file
    return open(filename, "w", encoding="utf-8")


def key_prefix(key: Any) -> str:
    """What a key's runs are counted under: ``inc`` for ``inc-<hash>``, the name of a dask
    chunk ``('sum-aggregate-<hash>', 0)`` without its hash."""
    name = str(key[0]) if isinstance(key, tuple) and key else str(key)
    head, dash, _ = name.rpartition("-")
    return (head if dash else name) or name


def spans(record: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in record.get("startstops", ()) if s.get("action") == action]


def seconds(parts: list[dict[str, Any]]) -> float:
    return sum(max(0.0, s["stop"] - s["start"]) for s in parts)


def thread_lanes(records: list[dict[str, Any]]) -> dict[str, list[list[dict[str, Any]]]]:
    """Each worker's runs, in lanes where computes never overlap: a run goes to the first
    lane free when its compute starts. The center does not record thread idents; a worker
    never computes more at once than it has threads, so the lanes are as many as the
    threads that were busy together."""
    lanes: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["startstops"][-1]["start"]):
        worker_lanes = lanes[record["worker"]]
        start = record["startstops"][-1]["start"]  # of the compute: fetches take no thread
        for lane in worker_lanes:
            if lane[-1]["startstops"][-1]["stop"] <= start:
                lane.append(record)
                break
        else:
            worker_lanes.append([record])
    return dict(sorted(lanes.items()))


def colour(prefix: str) -> str:
    """A colour per prefix, the same in every report."""
    hue = (zlib.crc32(prefix.encode()) % 360) / 360
    r, g, b = colorsys.hls_to_rgb(hue, 0.6, 0.55)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def table(header: list[str], rows: list[list[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def timeline(records: list[dict[str, Any]]) -> str:
    if not records:
        return "<p>No task ran.</p>"
    first = min(s["start"] for r in records for s in r["startstops"])
    last = max(s["stop"] for r in records for s in r["startstops"])
    scale = TIMELINE_WIDTH / max(last - first, 1e-6)
    rows: list[str] = []
    labels: list[str] = []
    for worker, lanes in thread_lanes(records).items():
        for number, lane in enumerate(lanes):
            y = len(labels) * LANE_HEIGHT
            labels.append(f'<text x="0" y="{y + 13}">{html.escape(worker)} '
                          f'#{number}</text>')
            for record in lane:
                prefix = key_prefix(record["key"])
                for part in record["startstops"]:
                    fill = "#d62728" if part["action"] == "transfer" else colour(prefix)
                    x = (part["start"] - first) * scale
                    width = max((part["stop"] - part["start"]) * scale, 0.5)
                    what = (f"{part['action']} of {record['key']} on {worker} from "
                            f"{part.get('source', worker)}: "
                            f"{part['stop'] - part['start']:.6f} s")
                    rows.append(f'<rect x="{x:.2f}" y="{y + 2}" width="{width:.2f}" '
                                f'height="{LANE_HEIGHT - 4}" fill="{fill}">'
                                f"<title>{html.escape(what)}</title></rect>")
    height = len(labels) * LANE_HEIGHT
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{TIMELINE_WIDTH + 230}" '
            f'height="{height + 20}" font-size="11" font-family="monospace">'
            f'<g>{"".join(labels)}</g><g transform="translate(230,0)">{"".join(rows)}</g>'
            f'<text x="230" y="{height + 15}">0 s</text>'
            f'<text x="{TIMELINE_WIDTH + 230}" y="{height + 15}" text-anchor="end">'
            f"{last - first:.3f} s</text></svg>")


def render(records: list[dict[str, Any]], start: float, stop: float, code: str,
           left_out: int = 0) -> str:
    """The page for ``records`` (task stream records) of a block from ``start`` to ``stop``
    (seconds since the epoch), of which the center no longer had ``left_out`` older runs."""
    by_prefix: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_prefix[key_prefix(record["key"])].append(record)
    compute = sum(seconds(spans(r, "compute")) for r in records)
    transfer = sum(seconds(spans(r, "transfer")) for r in records)
    summary = table(["duration", "tasks", "compute time", "transfer time", "errors"],
                    [[f"{stop - start:.3f} s", len(records), f"{compute:.3f} s",
                      f"{transfer:.3f} s", sum(r.get("status") != "OK" for r in records)]])
    prefixes = table(
        ["prefix", "tasks", "compute time", "transfer time", "errors", "bytes"],
        [[prefix, len(runs), f"{sum(seconds(spans(r, 'compute')) for r in runs):.3f} s",
          f"{sum(seconds(spans(r, 'transfer')) for r in runs):.3f} s",
          sum(r.get("status") != "OK" for r in runs), sum(r.get("nbytes") or 0 for r in runs)]
         for prefix, runs in sorted(by_prefix.items())])
    links: dict[tuple[str, str], list[float]] = defaultdict(list)
    for record in records:
        for part in spans(record, "transfer"):
            links[part["source"], record["worker"]].append(part["stop"] - part["start"])
    transfers = (table(["from", "to", "transfers", "time"],
                       [[source, to, len(times), f"{sum(times):.3f} s"]
                        for (source, to), times in sorted(links.items())])
                 if links else "<p>No transfer between workers.</p>")
    missing = (f"<p><strong>{left_out} earlier runs of the block are not in this report: the "
               "center keeps only its newest runs.</strong></p>" if left_out else "")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>dist performance report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>
<h1>Performance report</h1>
<p>From {html.escape(when)}, {stop - start:.3f} s.</p>
<h2>Summary</h2>{missing}{summary}
<h2>By task prefix</h2>{prefixes}
<h2>Task stream</h2>
<p>One row per worker thread; red: inputs fetched from other workers.</p>{timeline(records)}
<h2>Transfers between workers</h2>{transfers}
<p>The center records when inputs were fetched, not their sizes: no bandwidth figures.</p>
<h2>Code</h2><pre>{html.escape(code)}</pre>
</body></html>
"""


__all__ = ["performance_report", "render"]
