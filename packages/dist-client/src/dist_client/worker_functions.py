"""Functions the client sends to run on every worker (``run``, ``upload_file``)."""
from __future__ import annotations

import importlib
import os
import sys


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
