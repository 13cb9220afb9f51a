"""``Executor.nbytes``: the sizes of the results this client holds, as the workers measured
them, each or summed by the name its key starts with (as dask's ``Client.nbytes``)."""
from __future__ import annotations

import string
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from dist_protocol.key_names import user_key

from .keys import given_key
from .packing import futures_of

if TYPE_CHECKING:
    from .core.client import ClientCore

_HEX = frozenset(string.hexdigits)


def key_name(key: str) -> str:
    """The name a key starts with: ``inc`` of ``inc-<hash>``, ``sum-aggregate`` of the
    dask key ``"('sum-aggregate-<hash>', 0)"``; a key with no hash is its own name."""
    if key[:2] in ("('", '("'):
        key = key[2:].split(key[1], 1)[0]
    head, dash, tail = key.rpartition("-")
    if dash and head and len(tail) >= 8 and set(tail) <= _HEX:
        return head
    return key


def sizes(core: ClientCore, keys: Any = None, summary: bool = True) -> dict[Hashable, int]:
    """``{key: bytes}`` of the finished keys this client holds (of ``keys``: futures or
    keys, given); ``summary``: ``{name: bytes}``, summed by ``key_name``."""
    with core.lock:
        states = dict(core.state.held_states())
    if keys is not None:
        wanted = [future.name for future in futures_of(keys)] or [
            given_key(key) for key in (keys if isinstance(keys, (list, tuple, set)) else [keys])]
        states = {key: states[key] for key in wanted if key in states}
    found = {key: state.nbytes for key, state in states.items() if state.status == "finished"}
    if not summary:
        return {user_key(name): nbytes for name, nbytes in found.items()}
    totals: dict[Hashable, int] = {}
    for key, nbytes in found.items():
        name = key_name(key)
        totals[name] = totals.get(name, 0) + nbytes
    return totals


__all__ = ["key_name", "sizes"]
