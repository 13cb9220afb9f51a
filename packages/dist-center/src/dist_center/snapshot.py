"""The center's durable state as events: what a journal rewritten now holds (see ``store``).

Replayed into an empty ``CenterState``, these events give the same tasks (payloads,
restrictions, retries left, errors), the same clients wanting the same keys, and the same
detached sessions, as the journal they replace would. Pure: reads the state, changes nothing.
"""
from __future__ import annotations

from dist_protocol.messages import Submit, TaskErred, TaskSpec

from .events import ClientConnected, ClientSent, Event, Recovering, TaskFailed
from .records import TaskState
from .state import CenterState

RETRY_USED = TaskErred(key="", exception_type="RetryUsed",
                       message="a retry was used before the journal was rewritten")


def state_events(state: CenterState) -> list[Event]:
    events: list[Event] = []
    tasks = sorted((ts for ts in state.tasks.values() if ts.spec is not None),
                   key=lambda ts: ts.priority[1])
    first = True
    for client, keys in state.clients.items():
        features = frozenset({"key-recomputing"} if client in state.told_of_recomputing
                             else ())
        events.append(ClientConnected(client, features))
        if first:  # every task once, with the first client's keys wanted
            specs: list[TaskSpec] = [ts.spec for ts in tasks]  # type: ignore[misc]
            wanted: list[str] | None = sorted(keys)
            first = False
        else:
            specs = [ts.spec for key in sorted(keys)  # type: ignore[misc]
                     if (ts := state.tasks[key]).spec is not None]
            wanted = None
        small = client in state.small_values_for
        if specs or small:
            events.append(ClientSent(client, Submit(tasks=specs, wanted=wanted,
                                                    small_values=small)))
    for ts in tasks:
        events.extend(_failures(ts))
    if state.detached:
        events.append(Recovering())
    return events


def _failures(ts: TaskState) -> list[Event]:
    assert ts.spec is not None
    used = ts.spec.retries - ts.retries_left
    failures: list[Event] = [TaskFailed(ts.key, RETRY_USED) for _ in range(max(0, used))]
    if ts.state == "erred" and ts.error is not None:
        failures.append(TaskFailed(ts.key, ts.error))
    return failures
