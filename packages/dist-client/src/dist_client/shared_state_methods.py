"""What the Executor shares with every client through the center: metadata, published
datasets, and event topics (logged, read, subscribed to)."""
from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable
from typing import Any

from . import datasets as dataset_ops
from . import event_log
from . import forward_logging as forwarding
from . import metadata as metadata_ops
from .core.client import ClientCore


class SharedState:
    """The ``Executor``'s methods for state clients share (a part of its class, apart for
    reading)."""

    core: ClientCore

    def set_metadata(self, key: Any, value: Any) -> None:
        """Keep a small ``value`` on the cluster for every client under ``key`` (or a list
        of keys: nested dicts), as dask's ``set_metadata``."""
        metadata_ops.set_metadata(self, key, value)

    def get_metadata(self, key: Any, default: Any = metadata_ops.NO_DEFAULT) -> Any:
        """The value ``set_metadata`` kept under ``key`` (or a list or tuple of keys);
        ``default`` if given and there is none, else ``KeyError``."""
        return metadata_ops.get_metadata(self, key, default)

    def publish_dataset(self, *args: Any, **kwargs: Any) -> None:
        """Keep data (futures inside it, persisted dask collections) at the center under a
        name, for any client: ``publish_dataset(df, name="x")`` or ``publish_dataset(x=df)``;
        ``override=True`` replaces a dataset of that name. The dataset holds its keys until
        ``unpublish_dataset``."""
        self.core.run(dataset_ops.publish(self.core, args, kwargs))

    def get_dataset(self, name: Any, default: Any = dataset_ops.NO_DEFAULT) -> Any:
        """The dataset ``name``, with futures of this executor (KeyError if there is none and
        no ``default``)."""
        return self.core.run(dataset_ops.get(self.core, name, default))

    def list_datasets(self) -> tuple[Hashable, ...]:
        return self.core.run(dataset_ops.names(self.core))

    def unpublish_dataset(self, name: Any) -> None:
        """Forget the dataset ``name`` (KeyError if there is none); its keys go unless
        something else holds them."""
        self.core.run(dataset_ops.unpublish(self.core, name))

    @property
    def datasets(self) -> dataset_ops.Datasets:
        """The published datasets as a mapping: ``e.datasets["x"] = df``, ``del ...``."""
        return dataset_ops.Datasets(self.core)

    def log_event(self, topic: str | Iterable[str], msg: Any) -> None:
        """Add ``(now, msg)`` to the event log of ``topic`` (or of each topic of a list) the
        center keeps, as dask's: its newest 10,000 events per topic are kept, and each is
        sent to the topic's subscribers. ``msg`` must be msgpack serializable, as dask's
        (tuples come back as lists); ``TypeError`` if not. Also from a task, through
        ``get_executor()`` or ``get_worker()``."""
        self.core.run(event_log.log_event(self.core, topic, msg))

    def get_events(self, topic: str | None = None) -> Any:
        """The events of ``topic``, oldest first: a tuple of ``(timestamp, msg)``; without
        a topic, a dict of every topic's, as dask's."""
        return self.core.run(event_log.get_events(self.core, topic))

    def subscribe_topic(self, topic: str, handler: Any) -> None:
        """Call ``handler((timestamp, msg))`` for each event logged to ``topic`` from now on,
        in order, on a thread of this executor's (an ``async def`` handler is awaited);
        a later handler of the topic replaces the earlier."""
        self.core.run(event_log.subscribe(self.core, topic, handler))

    def unsubscribe_topic(self, topic: str) -> None:
        self.core.run(event_log.unsubscribe(self.core, topic))

    def forward_logging(self, logger_name: str | None = None,
                        level: int | str = logging.NOTSET) -> dict[str, str]:
        """Records handled by the logger ``logger_name`` (default the root, so every logger)
        or one below it in a task on any worker, of ``level`` or above, are handled here
        too, by the logger of the same name, as dask's (the worker's loggers and this
        process's decide by their own levels). Through a worker plugin and the event log:
        returns what ``register_plugin`` does."""
        return self.core.run(forwarding.start(self.core, logger_name, level))

    def unforward_logging(self, logger_name: str | None = None) -> dict[str, str]:
        """Stop what ``forward_logging(logger_name)`` started."""
        return self.core.run(forwarding.stop(self.core, logger_name))
