"""How long tasks ran, as cumulative counts that only grow (what Prometheus expects).

``CenterState`` calls ``observe`` once per finished task: a bisect and a few additions, so the
scheduling path stays O(1) in the number of tasks. The dashboard renders the totals on request.
"""
from __future__ import annotations

from bisect import bisect_left

# Upper bounds in seconds: from sub-millisecond tasks to long-running ones.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0, 300.0, float("inf"))


class TaskDurations:
    __slots__ = ("bucket_counts", "count", "seconds", "by_prefix")

    def __init__(self) -> None:
        self.bucket_counts = [0] * len(BUCKETS)  # per bucket, not cumulative
        self.count = 0
        self.seconds = 0.0
        self.by_prefix: dict[str, list] = {}  # prefix -> [count, seconds]

    def observe(self, prefix: str, seconds: float) -> None:
        self.bucket_counts[bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.seconds += seconds
        entry = self.by_prefix.get(prefix)
        if entry is None:
            self.by_prefix[prefix] = [1, seconds]
        else:
            entry[0] += 1
            entry[1] += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, tasks that took at most that long)`` for each bucket."""
        total, rows = 0, []
        for bound, count in zip(BUCKETS, self.bucket_counts):
            total += count
            rows.append((bound, total))
        return rows
