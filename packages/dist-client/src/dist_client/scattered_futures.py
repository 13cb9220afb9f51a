"""Scattering a value that holds futures (a persisted dask collection, a list of futures).

Such a value cannot be pushed to a worker as data: the worker would unpickle the futures in
it outside any task, where no executor binds them. As dask's workers do, the worker keeps
them as futures of its own executor on the cluster; here the value travels as the argument
of a task that returns it, so it is unpickled where a task's futures are (see
``pickled_futures``), and the scattered key is that task's. The client holds the futures
inside until the task has ended, as for any task whose arguments carry futures.
"""
from __future__ import annotations

from typing import Any

from dist_protocol.messages import Submit, TaskSpec
from dist_protocol.serialize import serialize
from dist_protocol.timeouts import wait_for

from .core.waiters import settled_async
from .pickled_futures import pin
from .tasks import TaskBuilder


def held_value(value: Any) -> Any:
    """The task of a scattered value that holds futures: the value, unpickled on a worker."""
    return value


async def put(core: Any, futures: dict[str, Any], carried: dict[str, list],
              values: dict[str, Any], new: list[str], workers: list[str] | None,
              timeout: float | None) -> None:
    """Store ``values`` (each holding the futures ``carried`` lists) under their keys, of
    which ``new`` are not yet the center's; returns once each is in memory on a worker of
    ``workers`` (any, if None), ``TimeoutError`` after ``timeout`` seconds."""
    options = TaskBuilder.options(workers)
    function = core.submitter.function_payload(held_value)
    tasks = []
    for key in new:
        tasks.append(TaskSpec(key=key, function=function, args=serialize(((values[key],), {})),
                              deps=[], pickled_with=core.envs.tag, **options))
        pin(futures[key], carried[key])
    if tasks:
        core.send(Submit(tasks=tasks, small_values=True))
    states = [futures[key].keystate for key in values]
    await wait_for(settled_async(states), timeout,
                   f"scatter: the values holding futures were not stored within {timeout} s")
    for state in states:
        if state.status != "finished":
            raise state.failure


__all__ = ["held_value", "put"]
