"""Functions the client sends to run on every worker (``run``, ``upload_file``,
``register_plugin``)."""
from __future__ import annotations

from typing import Any

from dist_protocol import uploaded_files


def install_file(filename: str, content: bytes, load: bool = True) -> str:
    """Write an uploaded file beside the worker; make .py/.zip/.egg files importable now,
    and import a .py module (again, if it was) when ``load``."""
    path = uploaded_files.install(filename, content, load)
    assert path is not None  # (written whatever was there)
    return path


def _this_worker_plugins() -> tuple[Any, Any]:
    """This worker's plugins and its view of itself, from a task, on a pool thread."""
    from dist_protocol import task_context
    from dist_worker.plugins import for_worker  # (this runs on a worker, which has it)

    context = task_context.current()
    if context is None or context.about_worker is None:
        raise RuntimeError("worker plugins are set up by a task on a worker of this release")
    context.leave_loop("a worker plugin's setup")  # it may block: never on the event loop
    return for_worker(context.worker), context.about_worker


def add_plugin(name: str, content: bytes) -> str:
    """Set up the pickled plugin ``content`` as ``name`` on this worker (replacing one of that
    name); its setup's error raises here, for the client."""
    from dist_worker.plugins import PluginUnpicklingError as NotLoaded
    from dist_worker.plugins import load

    from .errors import PluginUnpicklingError

    plugins, about = _this_worker_plugins()
    if plugins.has(name, content, about):
        return "OK"
    try:
        plugin = load(name, content, about.address)
    except NotLoaded as exc:
        raise PluginUnpicklingError(str(exc)) from None
    plugins.add(name, plugin, content, about)
    return "OK"


def remove_plugin(name: str) -> str:
    """Tear down the plugin ``name`` on this worker, if it has it."""
    plugins, about = _this_worker_plugins()
    plugins.remove(name, about)
    return "OK"
