"""``Executor.futures``: what dask users read as ``client.futures`` to see the keys the
client holds futures of, and the state of each."""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from .core.client import ClientCore
from .core.keystate import KeyState


class HeldFutures(Mapping[str, KeyState]):
    """A live, read-only view: key -> the client's state of that key (``status``,
    ``exception``, ``traceback``, ``type``, ``nbytes``), for each key this client holds
    a future of. It keeps nothing itself, so it never keeps a key held: a key leaves it
    when its last future is released."""

    def __init__(self, core: ClientCore):
        self._core = core

    def __getitem__(self, key: str) -> KeyState:
        with self._core.lock:
            return self._core.state.states[key]

    def __contains__(self, key: object) -> bool:
        with self._core.lock:
            return key in self._core.state.states

    def __iter__(self) -> Iterator[str]:
        with self._core.lock:
            return iter(list(self._core.state.states))  # a copy: keys come and go meanwhile

    def __len__(self) -> int:
        with self._core.lock:
            return len(self._core.state.states)

    def __repr__(self) -> str:
        return f"<HeldFutures: {len(self)} keys>"
