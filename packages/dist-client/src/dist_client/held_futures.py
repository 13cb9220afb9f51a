"""``Executor.futures``: what dask users read as ``client.futures`` to see the keys the
client holds futures of, and the state of each."""
from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping

from dist_protocol.key_names import user_key, wire_key

from .core.client import ClientCore
from .core.keystate import KeyState


class HeldFutures(Mapping[Hashable, KeyState]):
    """A live, read-only view: key (as the user gave it: ``17``, ``('x', 1)``) -> the
    client's state of that key (``status``, ``exception``, ``traceback``, ``type``,
    ``nbytes``), for each key this client holds a future of. It keeps nothing itself, so it
    never keeps a key held: a key leaves it when its last future is released."""

    def __init__(self, core: ClientCore):
        self._core = core

    def __getitem__(self, key: Hashable) -> KeyState:
        name = _name(key)
        with self._core.lock:
            found = self._core.state.held_states().get(name) if name is not None else None
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        name = _name(key)
        with self._core.lock:
            return name is not None and name in self._core.state.held_states()

    def __iter__(self) -> Iterator[Hashable]:
        with self._core.lock:
            names = list(self._core.state.held_states())  # a copy: keys come and go meanwhile
        return map(user_key, names)

    def __len__(self) -> int:
        with self._core.lock:
            return len(self._core.state.held_states())

    def __repr__(self) -> str:
        return f"<HeldFutures: {len(self)} keys>"


def _name(key: object) -> str | None:
    """The wire name of ``key``; None for what cannot name a key (never held)."""
    try:
        return wire_key(key)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
