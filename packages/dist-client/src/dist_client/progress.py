"""``progress(*futures)``: how many futures are done, as dask's ``progress`` shows it.

In a console it draws a text bar and returns when all are done. In a Jupyter notebook it
returns at once and leaves widget bars that follow the futures, so the kernel stays free for
the next cell -- a call that blocked there held the notebook until the last task ended.
"""
from __future__ import annotations

import functools
import sys
import threading
import time
from typing import Any

from .core.waiters import ThreadWaiter
from .future import Future
from .packing import futures_of


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(*futures: Any, notebook: bool | None = None, multi: bool = True,
             complete: bool = True, interval: float = 0.1, file=None, width: int = 40) -> None:
    """Show how many of ``futures`` (Futures, containers of them, persisted dask collections)
    are done; errors count as done.

    ``notebook`` (default: whether this runs in a Jupyter kernel with ipywidgets): return at
    once, leaving a widget bar per function (``multi``, as dask's) or one for all. Otherwise
    draw a text bar on ``file`` (stderr) every ``interval`` seconds at most and return once
    all are done. ``complete=False`` counts only the futures not done yet."""
    found = futures_of(list(futures))
    if not complete:
        found = [f for f in found if not f.done()]
    if notebook is None:
        notebook = _in_notebook()
    if notebook:
        _show_widgets(found, multi)
        return
    out = file or sys.stderr
    start = time.monotonic()
    with ThreadWaiter(f.keystate for f in found) as waiter:
        _draw(found, waiter, out, width, interval, start)
    out.write("\n")
    out.flush()


def _draw(found: list[Future], waiter: ThreadWaiter, out, width: int, interval: float,
          start: float) -> None:
    total = len(found)
    while True:
        done = sum(f.done() for f in found)
        errors = sum(f.done() and f.status != "finished" for f in found)
        elapsed = time.monotonic() - start
        filled = int(width * done / total) if total else width
        note = f", {errors} failed" if errors else ""
        out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total} "
                  f"| {elapsed:5.1f} s{note}")
        out.flush()
        if done == total:
            break
        waiter.until(functools.partial(_more_done, found, done))
        time.sleep(interval)  # redraw at most every interval, however fast tasks finish


def _more_done(found: list[Future], than: int) -> bool:
    return sum(f.done() for f in found) > than


def _show_widgets(found: list[Future], multi: bool) -> None:
    """Display the bars; each future's done callback moves its bar."""
    import ipywidgets
    from IPython.display import display
    groups: dict[str, list[Future]] = {}
    for future in found:
        groups.setdefault(function_name(future.name) if multi else "", []).append(future)
    if not groups:
        groups[""] = []
    bars = [_WidgetBar(ipywidgets, name, members) for name, members in groups.items()]
    display(bars[0].widget if len(bars) == 1 else ipywidgets.VBox([b.widget for b in bars]))
    for bar in bars:
        bar.follow()


class _WidgetBar:
    """An ``IntProgress`` counting its futures as they settle (on the callbacks' thread)."""

    def __init__(self, ipywidgets: Any, name: str, futures: list[Future]):
        self.name = name
        self.futures = futures
        self.total = len(futures)
        self.done = self.failed = 0
        self.lock = threading.Lock()
        self.widget = ipywidgets.IntProgress(min=0, max=max(self.total, 1), value=0)
        self._redraw()

    def follow(self) -> None:
        for future in self.futures:
            future.add_done_callback(self._one_done)
        self.futures = []  # (the bar holds none of them once each holds the bar)

    def _one_done(self, future: Future) -> None:
        with self.lock:
            self.done += 1
            self.failed += future.status != "finished"
            self._redraw()

    def _redraw(self) -> None:
        label = f"{self.name}: " if self.name else ""
        self.widget.value = self.done
        self.widget.description = f"{label}{self.done}/{self.total}"
        if self.failed:
            self.widget.bar_style = "danger"
        elif self.done == self.total:
            self.widget.bar_style = "success"


def function_name(key: str) -> str:
    """The function a key is named after: ``inc`` for ``inc-<hash>``; for a dask tuple key
    (``"('sum-aggregate-<token>', 0)"``) the name in its first element."""
    name = key[2:].split(key[1], 1)[0] if key[:2] in ("('", '("') else key
    head, dash, _ = name.rpartition("-")
    return (head if dash else name) or key
