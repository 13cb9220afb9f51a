"""Keys held by the center itself: named datasets, and tasks fired and forgotten.

A dataset holds its keys as a client would, under an id no connection has
(``<dataset NAME>``); ``fire-and-forget`` holds tasks under ``<fire-and-forget>`` until each
has ended. Messages the center sends these holders are not sent anywhere; those that say a
fired task ended let go of it. The data of a dataset is opaque here: the publisher's payload
(key references inside), given back as it came.
"""
from __future__ import annotations

from dist_protocol.messages import (DatasetReply, FireAndForget, GetDataset, KeyLost,
                                    ListDatasets, PublishDataset, Release, UnpublishDataset,
                                    WantKeys)

from .records import Dataset
from .view import Center

FIRE_AND_FORGET = "<fire-and-forget>"


def dataset_holder(name: str) -> str:
    return f"<dataset {name}>"


def is_holder(client: str) -> bool:
    """Whether ``client`` is one of the center's own holders rather than a connection."""
    return client.startswith("<")


def publish(state: Center, client: str, msg: PublishDataset, sid: str) -> None:
    if msg.name in state.datasets and not msg.override:
        state.send(client, DatasetReply(id=msg.id, error=f"a dataset named {msg.name!r} "
                                        "exists already (override=True replaces it)"))
        return
    unknown = [key for key in msg.keys if key not in state.tasks]
    if unknown:
        state.send(client, DatasetReply(id=msg.id, error=f"the center does not know the keys "
                                        f"{unknown[:5]} (released before they were published?)"))
        return
    holder = dataset_holder(msg.name)
    previous = state.datasets.get(msg.name)
    state.clients.setdefault(holder, set())
    for key in msg.keys:  # held before the keys of the dataset it replaces are let go
        state.want(holder, state.tasks[key])
    if previous is not None:
        state.release(holder, Release(keys=[k for k in previous.keys if k not in msg.keys]),
                      sid)
    state.datasets[msg.name] = Dataset(list(msg.keys), msg.data, msg.pickled_with)
    state.send(client, DatasetReply(id=msg.id))


def get(state: Center, client: str, msg: GetDataset, sid: str) -> None:
    dataset = state.datasets.get(msg.name)
    if dataset is None:
        state.send(client, DatasetReply(id=msg.id, error=f"no dataset named {msg.name!r}"))
    else:
        state.send(client, DatasetReply(id=msg.id, keys=list(dataset.keys), data=dataset.data,
                                        pickled_with=dataset.pickled_with))


def names(state: Center, client: str, msg: ListDatasets, sid: str) -> None:
    state.send(client, DatasetReply(id=msg.id, names=sorted(state.datasets)))


def unpublish(state: Center, client: str, msg: UnpublishDataset, sid: str) -> None:
    dataset = state.datasets.pop(msg.name, None)
    if dataset is None:
        state.send(client, DatasetReply(id=msg.id, error=f"no dataset named {msg.name!r}"))
        return
    holder = dataset_holder(msg.name)
    state.release(holder, Release(keys=dataset.keys), sid)
    state.clients.pop(holder, None)
    state.send(client, DatasetReply(id=msg.id))


def want_keys(state: Center, client: str, msg: WantKeys, sid: str) -> None:
    """``client`` holds keys it did not submit (from a dataset): tell it where each stands."""
    for key in msg.keys:
        ts = state.tasks.get(key)
        if ts is None:
            state.send(client, KeyLost(key=key, message=f"the center no longer knows {key} "
                                                         "(every holder released it)"))
            continue
        state.want(client, ts)
        state.report_existing(client, ts)
        if ts.state == "released":  # lineage only: wanted again, so computed again
            state.transition(ts, "waiting", sid)


def fire_and_forget(state: Center, client: str, msg: FireAndForget, sid: str) -> None:
    state.clients.setdefault(FIRE_AND_FORGET, set())
    for key in msg.keys:
        ts = state.tasks.get(key)
        if ts is None:
            continue
        if ts.state in ("memory", "erred", "lost"):
            continue  # ended already: nothing to keep it for
        state.want(FIRE_AND_FORGET, ts)


def forget_ended(state: Center, keys: list[str], sid: str) -> None:
    """The fired tasks ``keys`` ended (in memory, erred or lost): let go of them."""
    state.release(FIRE_AND_FORGET, Release(keys=keys), sid)
