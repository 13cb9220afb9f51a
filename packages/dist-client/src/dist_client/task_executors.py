"""The executors that tasks opened in this process (``in_task.get_executor``), one per
cluster and token. Kept apart from ``in_task``, which builds them, so that a cluster running
in this process (``inprocess``) can close them as it closes without importing the executor."""
from __future__ import annotations

import threading
from typing import Any

# (center address, token) -> the Executor the tasks of this process share on that cluster
by_cluster: dict[tuple[str, str | None], Any] = {}
lock = threading.Lock()


def close_executors_of(center: str) -> None:
    """Close the executors that tasks opened on the cluster at ``center``: a cluster in this
    process is closing, and nothing else would end them (a worker process takes its own with
    it), so they would go on reconnecting to a center that is gone."""
    with lock:
        closing = [by_cluster.pop(where) for where in list(by_cluster) if where[0] == center]
    for executor in closing:
        executor.close()


__all__ = ["by_cluster", "close_executors_of", "lock"]
