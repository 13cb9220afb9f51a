"""Functions the client sends to run on every worker (``run``, ``upload_file``,
``register_plugin``)."""
from __future__ import annotations

import inspect
from typing import Any

from dist_protocol import task_context, uploaded_files
from dist_protocol.task_context import PluginLoadError, WorkerPluginHost

from .errors import PluginUnpicklingError


def install_file(filename: str, content: bytes, load: bool = True) -> str:
    """Write an uploaded file beside the worker; make .py/.zip/.egg files importable now,
    and import a .py module (again, if it was) when ``load``."""
    path = uploaded_files.install(filename, content, load)
    assert path is not None  # (written whatever was there)
    return path


def takes_dask_worker(func: Any) -> bool:
    """Whether ``func`` names a ``dask_worker`` parameter (not only ``**kwargs``), which
    dask's ``Client.run`` fills with the worker it runs on."""
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    parameter = parameters.get("dask_worker")
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD,
                                                         parameter.KEYWORD_ONLY)


def package_versions(names: list[str]) -> dict[str, str | None]:
    """The installed version of each distribution named (None where it is not installed)."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def refuse_nanny(nanny: bool) -> None:
    """dask's ``run(nanny=True)`` runs the function in each worker's nanny process; a dist
    nanny runs no user code."""
    if nanny:
        raise ValueError("run(nanny=True): a dist worker's nanny runs no user code; functions "
                         "run in the worker processes (nanny=False)")


def call_with_worker(func: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``func(*args, dask_worker=<this worker's get_worker() view>, **kwargs)``, on a worker."""
    context = task_context.current()
    if context is None or context.about_worker is None:
        raise RuntimeError("dask_worker is given by a worker of this release, in a task")
    return func(*args, dask_worker=context.about_worker, **kwargs)


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
