"""What an actor's key holds: where the actor lives, and how it becomes a handle.

The worker hosting an actor keeps the object itself apart and stores an ``ActorRef`` -- the
key, the hosting worker's address, the class name and its method names -- as the key's value.
Unpickled where a client that can call actors is installed, a ref becomes that client's live
handle; elsewhere it stays this plain record. A client offers its handle class as an entry point
in the ``dist.actor_handle`` group (the Python client does), so this package never names a
client. No I/O here.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ActorRef:
    key: str
    address: str  # the hosting worker
    type: str  # the class name
    methods: tuple[str, ...] = ()  # public methods: calls; any other name is an attribute

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (rebuild, (self.key, self.address, self.type, self.methods))


HANDLE_GROUP = "dist.actor_handle"


@functools.cache
def _handle_class() -> Callable[..., Any] | None:
    from importlib.metadata import entry_points  # (a slow import: only once an actor is read)

    for entry in sorted(entry_points(group=HANDLE_GROUP), key=lambda entry: entry.name):
        try:
            return entry.load()  # type: ignore[no-any-return]
        except ImportError:
            continue  # an entry left behind by an uninstalled client
    return None


def rebuild(key: str, address: str, type_name: str, methods: tuple[str, ...]) -> Any:
    """The handle for an actor: an installed client's, else the plain ``ActorRef``."""
    handle = _handle_class()
    if handle is None:
        return ActorRef(key, address, type_name, tuple(methods))
    return handle(key, address, type_name, tuple(methods))


def public_methods(obj: Any) -> tuple[str, ...]:
    """The names of ``obj``'s public methods (read from its class: nothing of the instance
    runs), sorted."""
    names = []
    for name, member in inspect.getmembers(type(obj)):
        if not name.startswith("_") and callable(member):
            names.append(name)
    return tuple(sorted(names))


__all__ = ["ActorRef", "public_methods", "rebuild"]
