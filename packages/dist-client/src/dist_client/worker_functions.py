"""Functions the client sends to run on every worker (``run``, ``upload_file``,
``register_plugin``)."""
from __future__ import annotations

from dist_protocol import task_context, uploaded_files
from dist_protocol.task_context import PluginLoadError, WorkerPluginHost

from .errors import PluginUnpicklingError


def install_file(filename: str, content: bytes, load: bool = True) -> str:
    """Write an uploaded file beside the worker; make .py/.zip/.egg files importable now,
    and import a .py module (again, if it was) when ``load``."""
    path = uploaded_files.install(filename, content, load)
    assert path is not None  # (written whatever was there)
    return path


def _this_worker_plugins() -> WorkerPluginHost:
    """This worker's plugins, from a task, on a pool thread."""
    context = task_context.current()
    if context is None or context.plugins is None:
        raise RuntimeError("worker plugins are set up by a task on a worker of this release")
    context.leave_loop("a worker plugin's setup")  # it may block: never on the event loop
    return context.plugins


def add_plugin(name: str, content: bytes) -> str:
    """Set up the pickled plugin ``content`` as ``name`` on this worker (replacing one of that
    name); its setup's error raises here, for the client."""
    try:
        _this_worker_plugins().add(name, content)
    except PluginLoadError as exc:
        raise PluginUnpicklingError(str(exc)) from None
    return "OK"


def remove_plugin(name: str) -> str:
    """Tear down the plugin ``name`` on this worker, if it has it."""
    _this_worker_plugins().remove(name)
    return "OK"
