"""The center's durable state as events: what a journal rewritten now holds (see ``store``).

Replayed into an empty ``CenterState``, these events give the same tasks (payloads,
restrictions, retries left, errors), the same clients wanting the same keys, the same
detached sessions, the same uploaded files and the same worker plugins, as the journal they
replace would. Pure: reads the state, changes nothing.
"""
from __future__ import annotations

from dist_protocol.messages import (PublishDataset, RegisterPlugin, Submit, TaskErred,
                                    UploadFile)

from . import cancelling
from .events import ClientConnected, ClientSent, Event, Recovering, TaskFailed
from .records import TaskState
from .sharing import FIRE_AND_FORGET, dataset_holder, is_holder
from .state import CenterState
from .plugins import PLUGINS_HOLDER
from .uploads import UPLOADS_HOLDER

RETRY_USED = TaskErred(key="", exception_type="RetryUsed",
                       message="a retry was used before the journal was rewritten")


def state_events(state: CenterState) -> list[Event]:
    events: list[Event] = []
    journaled_holders = {FIRE_AND_FORGET, *(dataset_holder(name) for name in state.datasets)}
    for client, keys in state.clients.items():
        if is_holder(client) and client not in journaled_holders:
            continue  # a coordination primitive's hold: primitives are not journaled
        features = frozenset(
            feature for feature, clients in (("key-recomputing", state.told_of_recomputing),
                                             (cancelling.FEATURE, state.cancels_dependents))
            if client in clients)
        events.append(ClientConnected(client, features))
        # Its keys and every input they need, so that none is missing whatever was
        # forgotten since the submits before it.
        specs = [ts.spec for ts in _with_inputs(state, keys) if ts.spec is not None]
        forms = state.small_values_for.get(client)
        if specs or forms:
            events.append(ClientSent(client, Submit(
                tasks=specs, wanted=sorted(keys), small_values=forms is not None,
                small_values_serializers=None if forms in (None, ("pickle",)) else list(forms))))
    for (client, graph), pending in state.graph_parts.pending.items():
        # The parts of a graph whose last part is still to come, kept as they were.
        specs = [ts.spec for ts in _with_inputs(state, {ts.key for ts in pending.fresh})
                 if ts.spec is not None]
        events.append(ClientSent(client, Submit(tasks=specs, wanted=[], graph=graph,
                                                more=True)))
    for name, dataset in state.datasets.items():
        events.append(ClientSent(dataset_holder(name), PublishDataset(
            id=0, name=name, keys=list(dataset.keys), data=dataset.data,
            pickled_with=dataset.pickled_with)))
    for file in state.uploads.all():  # (in upload order, as workers install them)
        events.append(ClientSent(UPLOADS_HOLDER, UploadFile(id=0, file=file)))
    for plugin in state.plugins.all():  # (in registration order, as workers set them up)
        events.append(ClientSent(PLUGINS_HOLDER, RegisterPlugin(id=0, plugin=plugin)))
    tasks = sorted((ts for ts in state.tasks.values() if ts.spec is not None),
                   key=lambda ts: ts.order)
    for ts in tasks:
        events.extend(_failures(ts))
    if state.detached:
        events.append(Recovering())
    return events


def _with_inputs(state: CenterState, keys: set[str]) -> list[TaskState]:
    """The tasks of ``keys`` and, transitively, of their inputs, in the order submitted."""
    found: dict[str, TaskState] = {}
    stack = [key for key in keys if key in state.tasks]
    while stack:
        key = stack.pop()
        if key in found:
            continue
        ts = found[key] = state.tasks[key]
        stack.extend(dep for dep in ts.deps if dep in state.tasks and dep not in found)
    return sorted(found.values(), key=lambda ts: ts.order)


def _failures(ts: TaskState) -> list[Event]:
    assert ts.spec is not None
    used = ts.spec.retries - ts.retries_left
    failures: list[Event] = [TaskFailed(ts.key, RETRY_USED) for _ in range(max(0, used))]
    if ts.state == "erred" and ts.error is not None:
        failures.append(TaskFailed(ts.key, ts.error))
    return failures
