"""Running a task of the cluster again in the caller's process, to debug it, as dask's
``recreate_task_locally`` and ``recreate_error_locally``.

The center gives the task's spec as it was submitted (``task-spec``); the inputs its arguments
name by key are fetched from the workers, and the function is called here, in the caller's
thread, where a debugger (``pdb.pm()``, ``%debug``) can step into it. For an erred future the
center gives the task where the error began: a task whose input erred did not run at all.
"""
from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from dist_protocol.messages import GetTaskSpec, TaskSpec, TaskSpecReply, WantKeys
from dist_protocol.serialize import deserialize, substitute

from .core.waiters import settled_async
from .errors import ClusterError
from .packing import futures_of

if TYPE_CHECKING:
    from .core.client import ClientCore


class TaskCall:
    """A task's function and arguments, loaded in this process: ``run()`` calls it."""

    def __init__(self, key: str, function: Callable, args: tuple, kwargs: dict):
        self.key, self.function, self.args, self.kwargs = key, function, args, kwargs

    def run(self) -> Any:
        return self.function(*self.args, **self.kwargs)


async def erred_task(core: ClientCore, given: Any) -> TaskCall:
    """The task where the error of the first erred future of ``given`` (a future, a
    collection of them, a persisted dask collection) began, ready to run. The futures are
    waited for first; ``ValueError`` when none erred."""
    futures = futures_of(given)
    states = [future.keystate for future in futures]
    while any(not state.done for state in states):
        await settled_async(states)
    erred = [future for future in futures if future.keystate.status == "error"]
    if not erred:
        raise ValueError("No errored futures passed: recreate_error_locally needs a future "
                         "whose task failed (see Future.status)")
    return await _loaded(core, await _spec(core, erred[0].name, erred=True))


async def task(core: ClientCore, given: Any) -> TaskCall:
    """The task of the one future ``given`` (or of a collection holding one), ready to run."""
    futures = futures_of(given)
    keys = list(dict.fromkeys(future.name for future in futures))
    if len(keys) != 1:
        raise ValueError(f"recreate_task_locally takes one future (given {len(keys)} "
                         "keys): call it for each")
    return await _loaded(core, await _spec(core, keys[0], erred=False))


async def _spec(core: ClientCore, key: str, erred: bool) -> TaskSpec:
    center = core.center
    if center is not None and "task-specs" not in center.features:
        raise ClusterError(f"the center at {core.address} cannot give a task's spec (an older "
                           "release: it did not announce the protocol feature 'task-specs')")
    reply: TaskSpecReply = await core.ask(
        lambda request: GetTaskSpec(id=request, key=key, erred=erred))
    if reply.task is None:
        raise ValueError(f"cannot recreate {key!r}: {reply.error}")
    return reply.task


async def _loaded(core: ClientCore, spec: TaskSpec) -> TaskCall:
    inputs = await _input_values(core, list(dict.fromkeys(spec.deps)))
    function = (_imported(spec.function) if isinstance(spec.function, str)
                else deserialize(spec.function))
    if not callable(function):
        raise TypeError(f"the function of {spec.key!r} is a {type(function).__name__}, "
                        "not callable")
    args: tuple = ()
    kwargs: dict = {}
    if spec.args is not None:
        positional, keywords = deserialize(spec.args)
        args, kwargs = tuple(substitute(positional, inputs)), substitute(keywords or {},
                                                                               inputs)
    return TaskCall(spec.key, function, args, kwargs)


async def _input_values(core: ClientCore, keys: list[str]) -> dict[str, Any]:
    """The values of ``keys``, held for the fetch by futures of this client: keys it did not
    hold already, the center is asked to keep for it meanwhile (as a dataset's keys)."""
    if not keys:
        return {}
    with core.lock:
        new = [key for key in keys if not core.state.holds(key)]
        futures = [core.future(key) for key in keys]
    if new:
        center = core.center
        if center is not None and "datasets" not in center.features:
            raise ClusterError(f"the center at {core.address} cannot hand this client the "
                               "task's inputs (an older release: it did not announce the "
                               "protocol feature 'datasets')")
        core.send(WantKeys(keys=new))
    states = [future.keystate for future in futures]
    while any(not state.done for state in states):
        await settled_async(states)
    bad = [future for future in futures if future.keystate.status != "finished"]
    if bad:
        raise bad[0].keystate.failure
    return await core.data.values(keys, False)


def _imported(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    found: Any = import_module(module_name)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


__all__ = ["TaskCall", "erred_task", "task"]
