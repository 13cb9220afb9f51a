"""The worker's warning filters, put back when a task changes them.

``warnings.simplefilter("error")`` in a task is process-wide: every warning the worker's own
code met after it was raised as an exception. A worker without a nanny so left could not stop:
at an operator's SIGTERM the event loop's close met a ResourceWarning for a connection, and the
process was still running 40 s later. The filters the worker started with are put back, with a
warning, at each heartbeat and as the worker closes: a comparison of a short list each, nothing
per task.
"""
from __future__ import annotations

import logging
import warnings

log = logging.getLogger("dist.worker")

_KEPT = list(warnings.filters)  # (as the worker process started: imported before any task)


def put_back_warning_filters() -> None:
    """Put back the warning filters the worker started with if a task changed them."""
    if warnings.filters == _KEPT:
        return
    found = len(warnings.filters)
    warnings.filters[:] = _KEPT  # type: ignore[index]  # (a list, typed as a sequence)
    warnings._filters_mutated()  # type: ignore[attr-defined]  # (the module's caches)
    log.warning("the warning filters were changed (a task's warnings.simplefilter?; %d "
                "filters, %d at start): put back", found, len(_KEPT))


__all__ = ["put_back_warning_filters"]
