"""The task options of an enclosing ``with dask.annotate(...)`` block.

dask.distributed gives them to every task a client sends inside the block -- ``submit``,
``map``, ``compute``, ``persist``, ``get`` -- under the options the call gives itself, so
``with dask.annotate(resources={"GPU": 1}): x.compute()`` runs every task of ``x`` where the
resource is, whatever dask's graph optimization kept of the annotations of ``x``'s own parts.
(Those, read from the graph, are the tasks' own and win over the block's: ``dask_graphs``.)
"""
from __future__ import annotations

import sys
from typing import Any

from .tasks import TaskBuilder

# What ``dask.annotate`` may say of a task that the cluster acts on, as dask.distributed
# does; other annotations (names of the user's own) are kept by dask alone.
TASK_ANNOTATIONS = ("workers", "resources", "priority", "retries", "allow_other_workers")


def enclosing() -> dict[str, Any]:
    """The task options of the ``dask.annotate`` blocks this code runs in (of this thread,
    or asyncio task); none when dask was never imported, as then no block can be open (so a
    call costs a look-up, not an import)."""
    read = getattr(sys.modules.get("dask"), "get_annotations", None)
    found = read() if read is not None else None
    if not found:
        return {}
    return {kind: value for kind, value in found.items()
            if kind in TASK_ANNOTATIONS and value is not None}


def under_given(given: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """``given`` (a call's options, by annotation name) with the ones it leaves unset (None,
    0, False, empty) taken from ``block`` (``enclosing()``), as dask.distributed merges them.
    A block's value that is a function of a task's key is dask's to apply to the graphs it
    optimizes inside the block (which then carry it as their own annotations); a call that
    names its tasks later (``submit``, ``map``, a plain graph) leaves it out."""
    merged = dict(given)
    for kind, value in block.items():
        if not merged.get(kind) and not callable(value):
            merged[kind] = value
    return merged


def call_options(workers: Any, priority: Any, retries: Any, allow_other_workers: Any,
                 resources: Any) -> dict:
    """The task options of a ``submit`` or ``map`` (``TaskBuilder.options``), those it
    leaves unset taken from an enclosing ``dask.annotate`` block."""
    block = enclosing()
    if block:
        given = under_given({"workers": workers, "priority": priority, "retries": retries,
                             "allow_other_workers": allow_other_workers,
                             "resources": resources}, block)
        workers, priority, retries = given["workers"], given["priority"], given["retries"]
        allow_other_workers, resources = given["allow_other_workers"], given["resources"]
    return TaskBuilder.options(workers, priority, retries, allow_other_workers, resources)
