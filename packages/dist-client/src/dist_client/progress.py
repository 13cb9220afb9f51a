"""``progress(futures)``: a progress bar until the futures are done (a widget in Jupyter)."""
from __future__ import annotations

import functools
import sys
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


def progress(futures: Any, interval: float = 0.1, file=None, width: int = 40) -> None:
    """Show how many of ``futures`` (a Future, containers of them, persisted dask
    collections) are done; return when all are (errors count as done)."""
    found = futures_of(futures)
    total = len(found)
    widget = _make_widget(total) if _in_notebook() else None
    out = file or sys.stderr
    start = time.monotonic()
    with ThreadWaiter(f.keystate for f in found) as waiter:
        _draw(found, waiter, widget, out, width, interval, start)
    if widget is None:
        out.write("\n")
        out.flush()


def _draw(found: list[Future], waiter: ThreadWaiter, widget, out, width: int, interval: float,
          start: float) -> None:
    total = len(found)
    while True:
        done = sum(f.done() for f in found)
        errors = sum(f.done() and f.status != "finished" for f in found)
        elapsed = time.monotonic() - start
        if widget is not None:
            widget.value = done
            widget.description = f"{done}/{total}"
        else:
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


def _make_widget(total: int):
    import ipywidgets
    from IPython.display import display
    bar = ipywidgets.IntProgress(min=0, max=max(total, 1), description=f"0/{total}")
    display(bar)
    return bar
