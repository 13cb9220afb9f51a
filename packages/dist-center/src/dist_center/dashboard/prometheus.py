"""``/metrics``: the center's state in the Prometheus text exposition format (version 0.0.4).

Gauges are read from the state as it is now; counters (``*_total``, the duration histogram) come
from totals that ``CenterState`` only ever increases, as Prometheus' rate() expects.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from ..state import CenterState
from . import views

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class Exposition:
    """Collects metric families; each family's HELP and TYPE are written once, before samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]], suffix: str = "") -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.samples(name + suffix, samples)

    def samples(self, name: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        for labels, value in samples:
            if labels:
                text = ",".join(f'{key}="{escape_label(str(val))}"'
                                for key, val in labels.items())
                self.lines.append(f"{name}{{{text}}} {format_value(value)}")
            else:
                self.lines.append(f"{name} {format_value(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(state: CenterState, *, started: float) -> str:
    out = Exposition()
    out.family("dist_center_start_time_seconds", "gauge",
               "When the center started, in seconds since the Unix epoch.", [({}, started)])

    by_state = views.tasks_by_state(state)
    out.family("dist_tasks", "gauge", "Tasks the center knows, by state (those processing "
               "but waiting on a worker ahead of their inputs as state ahead).",
               [({"state": name}, count) for name, count in by_state.items()])
    out.family("dist_tasks_finished_total", "counter",
               "Tasks that finished (their result reached memory), by function-name prefix.",
               [({"prefix": prefix}, count)
                for prefix, count in sorted(state.finished_by_prefix.items())])
    out.family("dist_tasks_erred_total", "counter",
               "Tasks that failed, by function-name prefix.",
               [({"prefix": prefix}, count)
                for prefix, count in sorted(state.erred_by_prefix.items())])

    durations = state.task_durations
    out.family("dist_task_duration_seconds", "histogram",
               "How long tasks ran on their workers.",
               [({"le": format_value(bound)}, count) for bound, count in durations.cumulative()],
               suffix="_bucket")
    out.samples("dist_task_duration_seconds_sum", [({}, durations.seconds)])
    out.samples("dist_task_duration_seconds_count", [({}, durations.count)])
    by_prefix = sorted(durations.by_prefix.items())
    out.family("dist_task_compute_seconds_total", "counter",
               "Seconds tasks ran on workers, by function-name prefix.",
               [({"prefix": prefix}, seconds) for prefix, (_, seconds) in by_prefix])

    rows = views.worker_rows(state)
    statuses: dict[str, int] = {"running": 0, "paused": 0}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    out.family("dist_workers", "gauge", "Workers registered with the center, by status.",
               [({"status": name}, count) for name, count in sorted(statuses.items())])
    out.family("dist_clients", "gauge", "Clients connected to the center.",
               [({}, views.connected_clients(state))])
    out.family("dist_messages_handled_total", "counter",
               "Messages from clients and workers that the center handled.",
               [({}, state.messages_handled)])
    out.family("dist_bytes_held", "gauge",
               "Bytes of results held by all workers (each replica counts).",
               [({}, sum(row["nbytes"] for row in rows))])
    out.family("dist_transfers_in_flight", "gauge",
               "Dependencies workers are fetching from their peers now (from heartbeats).",
               [({}, sum(row["in_flight"] for row in rows))])

    def per_worker(field: str) -> list[tuple[dict[str, str], float]]:
        return [({"worker": row["address"], "name": row["name"]}, row[field]) for row in rows]

    for name, kind, help_text, field in (
        ("dist_worker_threads", "gauge", "Threads each worker runs tasks in.", "nthreads"),
        ("dist_worker_memory_bytes", "gauge", "Resident memory of each worker process.",
         "memory"),
        ("dist_worker_memory_limit_bytes", "gauge", "Memory limit of each worker (0: none).",
         "memory_limit"),
        ("dist_worker_memory_managed_bytes", "gauge",
         "Results each worker holds in memory (estimated sizes).", "managed"),
        ("dist_worker_memory_unmanaged_bytes", "gauge",
         "Resident memory of each worker not held by results.", "unmanaged"),
        ("dist_worker_memory_spilled_bytes", "gauge",
         "Results each worker spilled to disk, by their size in memory.", "spilled"),
        ("dist_worker_spilled_disk_bytes", "gauge",
         "Bytes of each worker's spill files on disk.", "spilled_disk"),
        ("dist_worker_spill_written_bytes_total", "counter",
         "Bytes each worker process has written to its spill files.", "spill_written"),
        ("dist_worker_spill_read_bytes_total", "counter",
         "Bytes each worker process has read back from its spill files.", "spill_read"),
        ("dist_worker_cpu_percent", "gauge", "CPU use of each worker, percent of one core.",
         "cpu"),
        ("dist_worker_tasks_executing", "gauge", "Tasks each worker is running now.",
         "executing"),
        ("dist_worker_tasks_processing", "gauge",
         "Tasks the center has assigned to each worker and not yet seen finish, but for those "
         "waiting there ahead of their inputs.", "processing"),
        ("dist_worker_tasks_ahead", "gauge",
         "Tasks waiting on each worker for inputs it is computing (sent ahead of them).",
         "ahead"),
        ("dist_worker_keys", "gauge", "Results each worker holds.", "keys"),
        ("dist_worker_bytes_held", "gauge", "Bytes of results each worker holds.", "nbytes"),
        ("dist_worker_transfers_in_flight", "gauge",
         "Dependencies each worker is fetching from its peers now.", "in_flight"),
    ):
        out.family(name, kind, help_text, per_worker(field))
    out.family("dist_center_entries", "gauge",
               "Entries of the center's tables kept per client, per request or per name: on a "
               "long-lived center they go back down as clients leave and names fall idle.",
               [({"table": name}, count) for name, count in table_sizes(state).items()])
    return out.text()


def table_sizes(state: CenterState) -> dict[str, int]:
    """How many entries each table the clients fill holds now."""
    waits, coordination = state.waits, state.coordination
    return {
        "clients": len(state.clients),  # connections and the center's own holders
        "datasets": len(state.datasets),
        "primitives": len(coordination.primitives),
        "coordination_waits": len(coordination.waiting),
        "coordination_stakes": len(coordination.stakes),  # clients holding or waiting
        "request_waits": len(waits.workers) + len(waits.plans) + len(waits.replicas),
        "graphs_in_parts": len(state.graph_parts.pending),
        "rebalances": len(state.rebalances.requests),
        "retirements": len(state.retirements.requests),
        "stories": len(state.stories.pending),
        "worker_queries": len(state.worker_queries.pending),
        "restarts": len(state.restarting),
        "worker_watchers": len(state.worker_feed.watchers),
        "small_values_for": len(state.small_values_for),
    }
