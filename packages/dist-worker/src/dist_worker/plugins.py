"""The worker plugins of one worker: set up with the worker's view (``WorkerInfo``), torn down
when replaced, removed or when the worker closes.

A plugin comes two ways: in ``worker-registered`` (the center keeps every plugin clients
registered, for workers that join later) and from a client's task run on each worker already
registered (``Executor.register_plugin``), which finds this worker's plugins in its task
context (``PluginHost``). Both call ``add`` on a thread, never on the event loop: ``setup`` may
load a model or install a package. A plugin this worker set up already, from the same pickled
bytes, is left alone, so that a worker registering again (after a lost connection, or a restart
of the center) does not set it up twice; a restart of the worker (a new ``WorkerInfo``) sets it
up again. User code that fails, to unpickle or to set up, raises to the caller; the worker goes
on."""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from typing import Any

from dist_protocol.messages import PluginSpec
from dist_protocol.serialize import Payload
from dist_protocol.task_context import PluginLoadError, WorkerInfo

from . import unpickling

log = logging.getLogger("dist.worker")

def _call(method: Any, about: WorkerInfo) -> None:
    result = method(worker=about)
    if inspect.isawaitable(result):  # dask's plugins may define async setup and teardown

        async def wait() -> None:
            await result

        asyncio.run(wait())


def load(name: str, content: bytes, address: str) -> Any:
    """The plugin pickled in ``content`` (``PluginLoadError`` if it does not load)."""
    try:
        return unpickling.unpickle(Payload("pickle", [content]))
    except Exception as exc:  # noqa: BLE001 -- whatever the pickle's code raises
        raise PluginLoadError(
            f"the worker plugin {name!r} could not be unpickled on the worker {address}: "
            f"{type(exc).__name__}: {exc}") from None


class WorkerPlugins:
    def __init__(self) -> None:
        self._lock = threading.RLock()  # tasks of several clients may add at once
        # name -> (plugin, its pickled bytes, the WorkerInfo id it was set up for)
        self._plugins: dict[str, tuple[Any, bytes, str]] = {}

    @property
    def names(self) -> list[str]:
        return list(self._plugins)

    def has(self, name: str, content: bytes, about: WorkerInfo) -> bool:
        """Whether the plugin pickled in ``content`` is set up here as ``name`` already."""
        present = self._plugins.get(name)
        return present is not None and present[1:] == (content, about.id)

    def add(self, name: str, plugin: Any, content: bytes, about: WorkerInfo) -> bool:
        """Set up ``plugin`` (pickled in ``content``) as ``name``, tearing down the one it
        replaces; whether it was set up (False: this one is set up here already)."""
        with self._lock:
            if self.has(name, content, about):
                return False
            present = self._plugins.get(name)
            if present is not None:
                self._teardown(name, present[0], about)
            self._plugins[name] = (plugin, content, about.id)
            log.info("setting up the worker plugin %s", name)
            setup = getattr(plugin, "setup", None)
            if setup is not None:
                _call(setup, about)  # (kept when it fails, as dask's: teardown still runs)
            return True

    def remove(self, name: str, about: WorkerInfo) -> bool:
        """Tear down and forget the plugin ``name``; whether this worker had it."""
        with self._lock:
            present = self._plugins.pop(name, None)
            if present is None:
                return False
            teardown = getattr(present[0], "teardown", None)
            if teardown is not None:
                _call(teardown, about)
            return True

    def add_kept(self, specs: list[PluginSpec], about: WorkerInfo) -> list[str]:
        """Set up the plugins the center kept, in order; the names of those set up now. One
        that fails is logged: the others, and the worker, go on."""
        done = []
        for spec in specs:
            content = b"".join(bytes(frame) for frame in spec.content.frames)
            try:
                if not self.has(spec.name, content, about) and self.add(
                        spec.name, load(spec.name, content, about.address), content, about):
                    done.append(spec.name)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 -- user code (its sys.exit, too)
                log.error("the worker plugin %s failed to set up: %s: %s", spec.name,
                          type(exc).__name__, exc)
        return done

    def teardown_all(self, about: WorkerInfo) -> None:
        """Tear down every plugin, newest first (the worker closes); failures are logged."""
        with self._lock:
            while self._plugins:
                name, (plugin, _, _) = self._plugins.popitem()
                self._teardown(name, plugin, about)

    @staticmethod
    def _teardown(name: str, plugin: Any, about: WorkerInfo) -> None:
        teardown = getattr(plugin, "teardown", None)
        if teardown is None:
            return
        try:
            _call(teardown, about)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 -- user code
            log.error("the worker plugin %s failed to tear down: %s: %s", name,
                      type(exc).__name__, exc)


class PluginHost:
    """What a client's task sees of this worker's plugins (``WorkerPluginHost``): the plugins
    with the worker's view as it is since its last start or restart."""

    __slots__ = ("plugins", "about")

    def __init__(self, plugins: WorkerPlugins, about: WorkerInfo) -> None:
        self.plugins = plugins
        self.about = about

    def add(self, name: str, content: bytes) -> None:
        if not self.plugins.has(name, content, self.about):
            plugin = load(name, content, self.about.address)
            self.plugins.add(name, plugin, content, self.about)

    def remove(self, name: str) -> None:
        self.plugins.remove(name, self.about)
