"""The table of a task's lifecycle at the center: every ``(start, finish)`` a task may move
along, and the ``TaskMachine`` method (in ``transitions``) that carries the move out. Data
alone, so that it can be printed: the spec's diagram is drawn from it, and the invariants
hold tasks to it.
"""
from __future__ import annotations

from .records import STATES, TaskStateName

# Every way a task's state may change: (start, finish) -> the CenterState method that does it.
# The spec's lifecycle diagram is drawn from this table and the invariants hold tasks to it.
TRANSITIONS: dict[tuple[TaskStateName, TaskStateName], str] = {
    ("released", "waiting"): "_released_waiting",
    ("released", "erred"): "_to_erred",
    ("released", "lost"): "_to_lost",
    ("released", "scattering"): "_to_scattering",
    ("waiting", "processing"): "_to_processing",
    ("waiting", "queued"): "_to_queued",
    ("waiting", "no-worker"): "_to_no_worker",
    ("waiting", "memory"): "_to_memory",
    ("waiting", "erred"): "_to_erred",
    ("waiting", "lost"): "_to_lost",
    ("waiting", "released"): "_to_released",
    ("queued", "processing"): "_to_processing",
    ("queued", "waiting"): "_to_waiting",
    ("queued", "memory"): "_to_memory",
    ("queued", "erred"): "_to_erred",
    ("queued", "lost"): "_to_lost",
    ("queued", "released"): "_to_released",
    ("no-worker", "processing"): "_to_processing",
    ("no-worker", "queued"): "_to_queued",
    ("no-worker", "waiting"): "_to_waiting",
    ("no-worker", "memory"): "_to_memory",
    ("no-worker", "erred"): "_to_erred",
    ("no-worker", "lost"): "_to_lost",
    ("no-worker", "released"): "_to_released",
    ("processing", "memory"): "_to_memory",
    ("processing", "waiting"): "_to_waiting",
    ("processing", "erred"): "_to_erred",
    ("processing", "lost"): "_to_lost",
    ("processing", "released"): "_to_released",
    ("memory", "released"): "_to_released",
    ("memory", "lost"): "_to_lost",
    ("erred", "released"): "_to_released",
    ("lost", "released"): "_to_released",
    ("lost", "scattering"): "_to_scattering",
    ("scattering", "memory"): "_scattering_memory",
    ("scattering", "released"): "_to_released",
    # A request, not an order: nothing happens to a task still needed (see _to_forgotten).
    **{(start, "forgotten"): "_to_forgotten" for start in STATES},
}


def lifecycle_diagram() -> str:
    """The table as a Mermaid state diagram in Markdown: spec/diagrams/center-tasks.md is this
    text (``python spec/tools/generate.py`` writes it; a test holds the two together)."""
    lines = ["# A task's states at the center",
             "",
             "Generated from `dist_center.transition_table.TRANSITIONS` by "
             "`python spec/tools/generate.py`; do not edit.",
             "Every arrow is a row of the table. `forgotten` is the center dropping the task's "
             "record: a request that a task still wanted or needed by a task that will run "
             "declines, and one that leaves a task others depend on `released`, as their "
             "lineage. Clients see only what `PROTOCOL.md` describes (`key-in-memory`, "
             "`task-erred`, `key-lost`, `key-cancelled`).",
             "",
             "```mermaid",
             "stateDiagram-v2",
             '    state "no-worker" as no_worker',
             "    [*] --> released: submit or scatter-plan"]
    ids = {state: state.replace("-", "_") for state in (*STATES, "forgotten")}
    for (start, finish), handler in TRANSITIONS.items():
        lines.append(f"    {ids[start]} --> {ids[finish]}: {handler.lstrip('_')}")
    lines += ["    forgotten --> [*]", "```", ""]
    return "\n".join(lines)
