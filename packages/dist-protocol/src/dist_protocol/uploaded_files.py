"""Where a file a client uploads goes on a worker, and how it is made importable.

Two paths install such files: the client's ``upload_file`` runs a function on the workers
present, and a worker installs the files its center kept as it registers. Both must use one
folder, or a module would be found in two places; the contract lives here, beside the wire
protocol both sides depend on, as the task context does. No I/O at import.
"""
from __future__ import annotations

import importlib
import os
import sys

ARCHIVES = (".zip", ".egg", ".whl")  # put on the import path as they are


def upload_folder() -> str:
    """This process's folder of uploaded files, created and on the import path."""
    import tempfile  # (with shutil and its compression modules) only once a file comes

    folder = os.path.join(tempfile.gettempdir(), f"dist-uploads-{os.getpid()}")
    os.makedirs(folder, exist_ok=True)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return folder


def install(filename: str, content: bytes, load: bool = True,
            unless_same: bool = False) -> str | None:
    """Write ``content`` as ``filename``'s base name in the upload folder and make it
    importable: an archive goes on the import path; a ``.py`` module is imported (again, if
    it was) when ``load``. Its path; None, with ``unless_same``, when the file there holds
    ``content`` already (nothing is written or imported again)."""
    name = os.path.basename(filename)
    path = os.path.join(upload_folder(), name)
    if unless_same:
        try:
            with open(path, "rb") as f:
                if f.read() == content:
                    return None
        except OSError:
            pass
    with open(path, "wb") as f:
        f.write(content)
    root, ext = os.path.splitext(name)
    if ext in ARCHIVES and path not in sys.path:
        sys.path.insert(0, path)
    importlib.invalidate_caches()
    if ext == ".py" and load:
        if root in sys.modules:
            importlib.reload(sys.modules[root])
        else:
            importlib.import_module(root)
    return path
