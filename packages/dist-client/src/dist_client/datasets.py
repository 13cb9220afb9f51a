"""Named datasets kept by the center, and tasks fired and forgotten, as in dask.

A dataset is data (any value, with futures inside it) under a name, and holds the keys of
those futures at the center until it is unpublished, whoever releases them meanwhile;
``get_dataset`` from any client gives the data back with futures of that client for the same
keys. Plain data (dicts, lists, strings, numbers, bytes, futures) travels as ``msgpack`` with
key references, which clients in any language read; anything else as a pickle in which each
future is a reference to its key.

The operations are coroutines on the client's I/O loop, as those of ``core.operations``.
"""
from __future__ import annotations

import io
import pickle
from collections.abc import AsyncIterator, Hashable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import cloudpickle
from dist_protocol.key_names import user_key
from dist_protocol.messages import (DatasetReply, FireAndForget, GetDataset, ListDatasets,
                                    Message, PublishDataset, UnpublishDataset, WantKeys)
from dist_protocol.serialize import KeyRef, Payload, deserialize, msgpack_dumps

from .errors import ClusterError
from .future import Future
from .keys import given_key
from .packing import futures_of, pack

if TYPE_CHECKING:
    from .core.client import ClientCore

NO_DEFAULT = object()
_PLAIN = (str, int, float, bool, bytes, type(None))


def _is_plain(value: Any) -> bool:
    """Whether msgpack gives ``value`` back as it is (tuples would come back as lists)."""
    kind = type(value)
    if kind in _PLAIN or kind is Future:
        return True
    if kind is list:
        return all(_is_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    return False


class _FuturePickler(cloudpickle.Pickler):
    """Pickles a future as a reference to its key, which each reader holds anew."""

    def __init__(self, file: io.BytesIO):
        super().__init__(file, protocol=5)
        self.keys: dict[str, None] = {}

    def persistent_id(self, obj: Any) -> str | None:  # type: ignore[override]
        if type(obj) is Future:
            self.keys[obj.name] = None
            return obj.name
        return None


class _FutureUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, core: ClientCore):
        super().__init__(file)
        self.core = core
        self.futures: dict[str, Future] = {}

    def persistent_load(self, pid: Any) -> Future:
        if type(pid) is not str:
            raise pickle.UnpicklingError(f"unexpected reference {pid!r} in a dataset")
        future = self.futures[pid] = self.core.future(pid)
        return future


def encode(value: Any) -> tuple[Payload, list[str]]:
    """The payload for ``value`` and the keys of the futures in it."""
    if _is_plain(value):
        found: dict[str, Any] = {}
        return Payload("msgpack", [msgpack_dumps(pack(value, found))]), list(found)
    buffer = io.BytesIO()
    pickler = _FuturePickler(buffer)
    pickler.dump(value)
    return Payload("pickle", [buffer.getvalue()]), list(pickler.keys)


def _with_futures(value: Any, core: ClientCore, made: dict[str, Future]) -> Any:
    kind = type(value)
    if kind is KeyRef:
        future = made[value.key] = core.future(value.key)
        return future
    if kind is list:
        return [_with_futures(v, core, made) for v in value]
    if kind is dict:
        return {k: _with_futures(v, core, made) for k, v in value.items()}
    return value


def decode(payload: Payload, core: ClientCore) -> tuple[Any, list[str]]:
    """The value of a dataset, with futures of this client, and the keys they hold."""
    if payload.serializer == "pickle":
        unpickler = _FutureUnpickler(io.BytesIO(bytes(payload.frames[0])), core)
        value = _of_this_client(unpickler.load(), core)
        return value, list(unpickler.futures)
    made: dict[str, Future] = {}
    value = _with_futures(deserialize(payload, allow_pickle=False), core, made)
    return value, list(made)


def _of_this_client(value: Any, core: ClientCore) -> Any:
    """``value``, or, for a persisted dask collection whose futures are another executor's,
    the same collection over this one's. dask caches its dataframes by their token, which
    their pickle carries: one unpickled in the process that published it is the publisher's
    own object, futures and all, and this client could not compute it."""
    graph = getattr(value, "__dask_graph__", None)
    postpersist = getattr(value, "__dask_postpersist__", None)
    if not (callable(graph) and callable(postpersist)):
        return value
    tasks = dict(graph())
    if all(type(v) is not Future or getattr(v.executor, "core", None) is core
           for v in tasks.values()):
        return value
    rebuild, args = postpersist()
    return rebuild({key: core.future(v.name) if type(v) is Future else v
                    for key, v in tasks.items()}, *args)


def dataset_name(name: Any) -> str:
    """A dataset's name on the wire: a string, or what dask also takes for one -- an int or
    a tuple, say -- named as the same key of a dask graph is (so ``1`` and ``"1"`` are two
    names, as for dask). Refused here, before it is sent, when it is none of those."""
    try:
        return given_key(name)
    except TypeError:
        raise TypeError(f"a dataset's name is a string, or an int, float, bytes or a tuple "
                        f"of those; not {type(name).__name__} ({name!r:.80})") from None


def _checked(reply: DatasetReply, missing: Any = None) -> DatasetReply:
    if reply.error:
        if reply.error.startswith("no dataset named"):
            raise KeyError(f"dataset {missing!r} not found" if missing is not None
                           else reply.error)
        if reply.error.startswith("a dataset named"):
            # (a name in use, without override=True: a KeyError, as dask raises)
            raise KeyError(reply.error)
        raise ValueError(reply.error)
    return reply


async def _ask(core: ClientCore, make: Any) -> DatasetReply:
    center = core.center
    if center is not None and "datasets" not in center.features:
        raise ClusterError(f"the center at {core.address} keeps no datasets (an older release: "
                           "it did not announce the protocol feature 'datasets')")
    reply: DatasetReply = await core.ask(make)
    return reply


async def publish(core: ClientCore, args: tuple, kwargs: dict) -> None:
    """``publish_dataset(df, name="x")`` or ``publish_dataset(x=df, y=other)``, as dask's;
    ``override=True`` replaces datasets of those names."""
    kwargs = dict(kwargs)
    override = bool(kwargs.pop("override", False))
    if "name" in kwargs:
        if not args:
            raise ValueError("with name=, give the data as the argument: "
                             "publish_dataset(data, name='x')")
        named = {kwargs.pop("name"): args[0] if len(args) == 1 else args}
    elif args:
        raise ValueError("name the data: publish_dataset(data, name='x') or "
                         "publish_dataset(x=data)")
    else:
        named = {}
    named.update(kwargs)
    wire_names = [dataset_name(given) for given in named]  # all checked before any is sent
    center = core.center
    features = center.features if center is not None else frozenset()
    for name, value in zip(wire_names, named.values()):
        payload, keys = encode(value)
        tag = core.envs.tag_of(payload, features)
        _checked(await _ask(core, lambda request, name=name, keys=keys, payload=payload,
                            tag=tag: PublishDataset(id=request, name=name, keys=keys,
                                                    data=payload, override=override,
                                                    pickled_with=tag)))


async def get(core: ClientCore, name: Any, default: Any = NO_DEFAULT) -> Any:
    wire_name = dataset_name(name)
    try:
        reply = _checked(await _ask(core, lambda request: GetDataset(id=request,
                                                                     name=wire_name)), name)
    except KeyError:
        if default is NO_DEFAULT:
            raise
        return default
    if reply.data is None:  # keys alone (a client that published no data): their futures
        value: Any = [core.future(key) for key in reply.keys]
        held = list(reply.keys)
    else:
        core.envs.check_shared(reply.data, reply.pickled_with, f"dataset {name!r}")
        value, held = decode(reply.data, core)
    if held:
        # This client's futures hold the keys from now on; the center tells it where each
        # stands, as for keys it submitted.
        core.send(WantKeys(keys=held))
    return value


async def names(core: ClientCore) -> tuple[Hashable, ...]:
    """The names of the published datasets, as their publishers gave them."""
    return tuple(map(user_key, await wire_names(core)))


async def wire_names(core: ClientCore) -> tuple[str, ...]:
    reply = _checked(await _ask(core, lambda request: ListDatasets(id=request)))
    return tuple(reply.names or ())


async def unpublish(core: ClientCore, name: Any) -> None:
    wire_name = dataset_name(name)
    _checked(await _ask(core, lambda request: UnpublishDataset(id=request, name=wire_name)),
             name)


class Datasets(MutableMapping):
    """``executor.datasets``: the published datasets as a mapping (as dask's)."""

    def __init__(self, core: ClientCore):
        self.core = core

    def __getitem__(self, name: str) -> Any:
        return self.core.run(get(self.core, name))

    def __setitem__(self, name: str, value: Any) -> None:
        self.core.run(publish(self.core, (), {name: value, "override": True}))

    def __delitem__(self, name: str) -> None:
        self.core.run(unpublish(self.core, name))

    def __contains__(self, name: object) -> bool:
        try:
            wire_name = dataset_name(name)
        except TypeError:
            return False
        return wire_name in self.core.run(wire_names(self.core))

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.core.run(names(self.core)))

    def __len__(self) -> int:
        return len(self.core.run(names(self.core)))

    def __aiter__(self) -> Any:
        raise TypeError("async for over the datasets is for an AsyncExecutor's; with an "
                        "Executor, iterate with for")


class AsyncDatasets:
    """``async_executor.datasets``: ``await datasets["x"]`` and ``async for name in
    datasets``, as dask's asynchronous client has them. What would have to block (setting,
    deleting, ``len``, plain iteration) raises ``TypeError`` naming the coroutine to await
    instead."""

    def __init__(self, executor: Any):
        self.executor = executor

    def __getitem__(self, name: Any) -> Any:
        return self.executor.get_dataset(name)

    def __setitem__(self, name: Any, value: Any) -> None:
        raise TypeError("an AsyncExecutor's datasets[name] = value cannot be awaited: "
                        "await executor.publish_dataset(value, name=name) instead")

    def __delitem__(self, name: Any) -> None:
        raise TypeError("an AsyncExecutor's del datasets[name] cannot be awaited: "
                        "await executor.unpublish_dataset(name) instead")

    def __iter__(self) -> Iterator[str]:
        raise TypeError("iterate over an AsyncExecutor's datasets with async for")

    def __len__(self) -> int:
        raise TypeError("an AsyncExecutor's len(datasets) cannot be awaited: "
                        "len(await executor.list_datasets()) instead")

    async def __aiter__(self) -> AsyncIterator[str]:
        for name in await self.executor.list_datasets():
            yield name


def fire_and_forget(futures: Any) -> None:
    """Run the tasks of ``futures`` (a Future, lists/tuples/dicts/sets of them, or a
    persisted dask collection) to their end, though every future of them be released: the
    center holds each until it is done."""
    found = futures_of(futures)
    by_core: dict[int, tuple[ClientCore, list[str]]] = {}
    for future in found:
        executor = future.executor
        if executor is not None:
            by_core.setdefault(id(executor.core), (executor.core, []))[1].append(future.name)
    for core, keys in by_core.values():
        center = core.center
        if center is not None and "fire-and-forget" not in center.features:
            raise ClusterError(f"the center at {core.address} cannot fire and forget (an older "
                               "release: it did not announce the protocol feature "
                               "'fire-and-forget')")
        message: Message = FireAndForget(keys=list(dict.fromkeys(keys)))
        core.send(message)
