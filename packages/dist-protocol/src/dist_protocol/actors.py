"""What an actor's key holds: where the actor lives, and how it becomes a handle.

The worker hosting an actor keeps the object itself apart and stores an ``ActorRef`` -- the
key, the hosting worker's address, the class name and its method names -- as the key's value.
Unpickled where the Python client is installed, a ref becomes its live handle
(``dist_client.actors.Actor``); elsewhere it stays this plain record. No I/O here.
"""
from __future__ import annotations

import importlib
import inspect
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


def rebuild(key: str, address: str, type_name: str, methods: tuple[str, ...]) -> Any:
    """The handle for an actor: the Python client's, when that is installed here."""
    try:
        module = importlib.import_module("dist_client.actors")
    except ImportError:
        return ActorRef(key, address, type_name, tuple(methods))
    return module.Actor(key, address, type_name, tuple(methods))


def public_methods(obj: Any) -> tuple[str, ...]:
    """The names of ``obj``'s public methods (read from its class: nothing of the instance
    runs), sorted."""
    names = []
    for name, member in inspect.getmembers(type(obj)):
        if not name.startswith("_") and callable(member):
            names.append(name)
    return tuple(sorted(names))


__all__ = ["ActorRef", "public_methods", "rebuild"]
