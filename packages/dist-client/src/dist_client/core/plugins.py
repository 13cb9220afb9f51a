"""Worker plugins, as dask's ``Client.register_plugin``: the center keeps each (pickled, by
name) for the workers that register later, and the client sets it up on the workers
registered now by a task on each, which reports each worker's error."""
from __future__ import annotations

import uuid
from typing import Any

from dist_protocol.messages import PluginSpec, RegisterPlugin, UnregisterPlugin
from dist_protocol.serialize import Payload

from ..errors import CENTER_RUNS_NO_USER_CODE, ClusterError, PluginUnpicklingError
from .client import ClientCore
from .operations import run_everywhere


# What only dask's scheduler plugins define (a worker plugin has setup/teardown/transition).
SCHEDULER_HOOKS = ("update_graph", "add_worker", "remove_worker", "add_client", "remove_client",
                   "restart", "before_close")


def refuse_scheduler_plugin(plugin: Any) -> None:
    """dask's ``register_plugin`` takes scheduler plugins too; dist's center runs none."""
    kinds = {cls.__name__ for cls in type(plugin).__mro__}
    hooks = [hook for hook in SCHEDULER_HOOKS if callable(getattr(plugin, hook, None))]
    if "SchedulerPlugin" in kinds or hooks:
        what = "a SchedulerPlugin" if "SchedulerPlugin" in kinds else f"it has {hooks[0]}()"
        raise NotImplementedError(CENTER_RUNS_NO_USER_CODE.format(
            f"registering {plugin!r}, a scheduler plugin ({what}),"))
    if "NannyPlugin" in kinds:
        raise NotImplementedError(f"{plugin!r} is a nanny plugin: dist's nanny (dworker "
                                  "--nanny) runs no user code; a worker plugin "
                                  "(setup(worker)) runs in each worker process, and again "
                                  "in each process a nanny restarts")


def plugin_name(plugin: Any, name: str | None) -> str:
    """``name``, else the plugin's ``name`` attribute, else its class's name made unique (as
    dask's: such a plugin is never replaced by registering another)."""
    if name is not None:
        return str(name)
    given = getattr(plugin, "name", None)
    if isinstance(given, str) and given:
        return given
    return f"{type(plugin).__name__}-{uuid.uuid4()}"


def _needs_plugins(core: ClientCore) -> None:
    center = core.center
    if center is not None and "worker-plugins" not in center.features:
        raise ClusterError(f"the center at {core.address} keeps no worker plugins (an older "
                           "release: it did not announce the protocol feature "
                           "'worker-plugins'); upgrade dcenter")


async def register_plugin(core: ClientCore, plugin: Any, name: str | None,
                          idempotent: bool | None,
                          add: Any, remove: Any) -> dict[str, str]:
    """Keep ``plugin`` at the center for workers joining later and set it up on every worker
    now registered (``add`` run on each): {address: "OK"}. A setup's error raises here, as
    dask's (the plugin stays registered, as there). A plugin that does not unpickle on a
    worker is unregistered again and raises ``PluginUnpicklingError``."""
    import cloudpickle

    refuse_scheduler_plugin(plugin)
    if not callable(getattr(plugin, "setup", None)) and not callable(
            getattr(plugin, "teardown", None)):
        raise TypeError(f"register_plugin: {plugin!r} is not a worker plugin (it has neither "
                        f"setup(worker) nor teardown(worker))")
    _needs_plugins(core)
    name = plugin_name(plugin, name)
    content = cloudpickle.dumps(plugin, protocol=5)
    spec = PluginSpec(name=name, content=Payload("pickle", [content]))
    if idempotent is None:  # as dask's: the plugin's own ``idempotent`` attribute
        idempotent = bool(getattr(plugin, "idempotent", False))
    reply = await core.ask(lambda i: RegisterPlugin(id=i, plugin=spec, idempotent=idempotent))
    if reply.error is not None:
        raise ValueError(f"register_plugin: {reply.error}")
    if not reply.kept:
        return {}  # idempotent, and a plugin of that name is there already (as dask's)
    results = await run_everywhere(core, add, (name, content), {}, on_error="return")
    errors = [result for result in results.values() if isinstance(result, BaseException)]
    if any(isinstance(error, PluginUnpicklingError) for error in errors):
        await _forget(core, name, remove)
    if errors:
        raise next((e for e in errors if isinstance(e, PluginUnpicklingError)), errors[0])
    return {address: "OK" for address in results}


async def unregister_plugin(core: ClientCore, name: str, remove: Any) -> dict[str, str]:
    """Forget the plugin ``name`` at the center and tear it down on every worker now
    registered: {address: "OK"}; ``ValueError`` when no plugin has that name."""
    _needs_plugins(core)
    name = str(name)
    reply = await core.ask(lambda i: UnregisterPlugin(id=i, name=name))
    if reply.error is not None:
        raise ValueError(f"unregister_worker_plugin: {reply.error}")
    results = await run_everywhere(core, remove, (name,), {}, on_error="return")
    errors = [result for result in results.values() if isinstance(result, BaseException)]
    if errors:
        raise errors[0]
    return {address: "OK" for address in results}


async def _forget(core: ClientCore, name: str, remove: Any) -> None:
    await core.ask(lambda i: UnregisterPlugin(id=i, name=name))
    await run_everywhere(core, remove, (name,), {}, on_error="ignore")
