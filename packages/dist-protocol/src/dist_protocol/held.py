"""The function of a task that only holds a value: a large keyword argument that every task
of a client's ``map`` shares is sent once as such a task's argument, and the map's tasks take
its result as an input (as dask's ``map`` makes a data node of it). It lives here, not in the
client, because every worker imports the protocol package and not every one the client's."""
from __future__ import annotations

from typing import Any


def held_value(value: Any) -> Any:
    return value


__all__ = ["held_value"]
