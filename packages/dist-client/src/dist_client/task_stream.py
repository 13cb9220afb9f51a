"""The task stream: the task runs the center recorded, as dask's ``get_task_stream``
returns them -- ``Executor.get_task_stream(start, stop, count)``, and ``with
get_task_stream() as ts: ...`` for those recorded inside the block (``ts.data``)."""
from __future__ import annotations

import numbers
import time
from typing import Any

from dist_protocol.key_names import user_key
from dist_protocol.messages import TaskStream
from dist_protocol.timeouts import wait_for

from .arguments import duration, whole_number
from .errors import ClusterError

ANSWER_WITHIN = 30.0  # seconds the center has to answer


def time_bound(name: str, value: Any, now: float) -> float | None:
    """``start``/``stop`` as dask takes them: seconds since the epoch, a ``datetime``, or a
    duration before now ("10s", "2 minutes")."""
    if value is None:
        return None
    if isinstance(value, str):
        return now - duration(name, value)
    if hasattr(value, "timestamp") and callable(value.timestamp):  # a datetime
        return float(value.timestamp())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name} must be seconds since the epoch, a datetime or a duration such "
                    f"as '10s', not {value!r}")


def request(start: Any = None, stop: Any = None, count: Any = None,
            after: int | None = None) -> dict[str, Any]:
    """The fields of the ``task-stream`` request for these arguments; bad ones raise here."""
    now = time.time()
    return {"after": after, "start": time_bound("start", start, now),
            "stop": time_bound("stop", stop, now),
            "count": None if count is None else whole_number("count", count, minimum=0)}


async def fetch(core: Any, wanted: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The center's cursor and the runs ``wanted`` names (runs on the client's I/O loop)."""
    center = core.center
    if center is not None and "task-stream" not in center.features:
        raise ClusterError(f"the center at {core.address} keeps no task stream for clients (an "
                           "older release: it did not announce the protocol feature "
                           "'task-stream')")
    reply = await wait_for(core.ask(lambda i: TaskStream(id=i, **wanted)), ANSWER_WITHIN,
                           f"get_task_stream: no answer within {ANSWER_WITHIN:g} s")
    # Each run's key as the user gave it (``Future.key``), as dask's records have it.
    return reply.cursor, [{**record, "key": user_key(record["key"])} if "key" in record
                          else record for record in reply.records]


class get_task_stream:  # noqa: N801 -- dask's name, a context manager as there
    """Collect the task runs recorded while the block runs::

        with get_task_stream() as ts:
            executor.gather(executor.map(inc, range(10)))
        ts.data  # [{"key", "worker", "status", "nbytes", "startstops"}, ...]

    On the default executor, or ``executor`` (dask's ``client``). The center keeps the newest
    5000 runs: a block that runs more gets the latest of them."""

    def __init__(self, executor: Any = None, client: Any = None):
        self._executor = executor if executor is not None else client
        self.data: list[dict[str, Any]] = []
        self._cursor = 0

    def _core(self) -> Any:
        if self._executor is None:
            from .current import default_executor
            self._executor = default_executor()
        return self._executor.core

    def __enter__(self) -> get_task_stream:
        core = self._core()
        self._cursor, _ = core.run(fetch(core, request(count=0)))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        core = self._core()
        _, records = core.run(fetch(core, request(after=self._cursor)))
        self.data.extend(records)

    async def __aenter__(self) -> get_task_stream:
        core = self._core()
        self._cursor, _ = await core.call(fetch(core, request(count=0)))
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        core = self._core()
        _, records = await core.call(fetch(core, request(after=self._cursor)))
        self.data.extend(records)


__all__ = ["fetch", "get_task_stream", "request", "time_bound"]
