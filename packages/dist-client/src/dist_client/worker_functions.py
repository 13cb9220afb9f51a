"""Functions the client sends to run on every worker (``run``, ``upload_file``,
``register_plugin``)."""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def upload_target() -> str:
    # The folder a worker installs the files its center kept into as it registers
    # (dist_worker's uploads): one folder, or a module would be found in two places.
    import tempfile  # (with shutil and its compression modules) on a worker, when it is used

    folder = os.path.join(tempfile.gettempdir(), f"dist-uploads-{os.getpid()}")
    os.makedirs(folder, exist_ok=True)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return folder


def install_file(filename: str, content: bytes, load: bool = True) -> str:
    """Write an uploaded file beside the worker; make .py/.zip/.egg files importable now,
    and import a .py module (again, if it was) when ``load``."""
    folder = upload_target()
    path = os.path.join(folder, os.path.basename(filename))
    with open(path, "wb") as f:
        f.write(content)
    root, ext = os.path.splitext(os.path.basename(filename))
    if ext in (".zip", ".egg", ".whl") and path not in sys.path:
        sys.path.insert(0, path)
    importlib.invalidate_caches()
    if ext == ".py" and load:
        if root in sys.modules:
            importlib.reload(sys.modules[root])
        else:
            importlib.import_module(root)
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
