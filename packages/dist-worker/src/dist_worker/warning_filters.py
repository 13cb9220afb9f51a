"""The worker's warning filters: those a task added to raise warnings as errors, taken out.

``warnings.simplefilter("error")`` in a task is process-wide: every warning the worker's own
code met after it was raised as an exception. A worker without a nanny so left could not stop:
at an operator's SIGTERM the event loop's close met a ResourceWarning for a connection, and the
process was still running 40 s later. The "error" filters added since the worker started are
taken out, with a warning, at each heartbeat and as the worker closes: a comparison of a short
list each, nothing per task. Every other filter stays: libraries add theirs as a task first
imports them (pandas ignores numpy's "size changed" warnings), and taking those out would
bring back what they chose to hide.
"""
from __future__ import annotations

import logging
import warnings

log = logging.getLogger("dist.worker")

_KEPT = list(warnings.filters)  # (as the worker process started: imported before any task)


def put_back_warning_filters() -> None:
    """Take out the "error" filters a task added (those the worker started with stay)."""
    filters = warnings.filters
    if filters == _KEPT:
        return
    kept = [entry for entry in filters if entry[0] != "error" or entry in _KEPT]
    if len(kept) == len(filters):
        return
    found = len(filters)
    warnings.filters[:] = kept  # type: ignore[index]  # (a list, typed as a sequence)
    warnings._filters_mutated()  # type: ignore[attr-defined]  # (the module's caches)
    log.warning("a task made warnings raise as errors (warnings.simplefilter('error')?): "
                "%d of its %d filters taken out", found - len(kept), found)


__all__ = ["put_back_warning_filters"]
