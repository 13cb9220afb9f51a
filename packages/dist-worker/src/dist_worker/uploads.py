"""Installing the files clients uploaded, which the center hands a worker as it registers.

Each file is written to this process's upload folder, on its import path: the folder a
client's ``upload_file`` writes to when it reaches the workers present (the two must agree,
or a module would be found in two places). A ``.py`` file is imported when its upload asked,
an archive (``.zip``, ``.egg``, ``.whl``) goes on the import path. A file this process holds
already, byte for byte, is left alone: a worker registering again (after a lost connection or
a restart of the center) does not import its modules a second time. A file that fails is
logged; the worker goes on, as it would with a task that failed.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile

from dist_protocol.messages import UploadedFile

log = logging.getLogger("dist.worker")
ARCHIVES = (".zip", ".egg", ".whl")


def upload_folder() -> str:
    folder = os.path.join(tempfile.gettempdir(), f"dist-uploads-{os.getpid()}")
    os.makedirs(folder, exist_ok=True)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return folder


def install(file: UploadedFile) -> bool:
    """Write ``file`` (and import or add it to the path); whether anything changed."""
    name = os.path.basename(file.name)
    path = os.path.join(upload_folder(), name)
    content = b"".join(bytes(frame) for frame in file.content.frames)
    try:
        with open(path, "rb") as f:
            if f.read() == content:
                return False
    except OSError:
        pass
    with open(path, "wb") as f:
        f.write(content)
    root, ext = os.path.splitext(name)
    if ext in ARCHIVES and path not in sys.path:
        sys.path.insert(0, path)
    importlib.invalidate_caches()
    if ext == ".py" and file.load:
        if root in sys.modules:
            importlib.reload(sys.modules[root])
        else:
            importlib.import_module(root)
    return True


def install_all(files: list[UploadedFile]) -> list[str]:
    """Install ``files`` in order; the names of those that changed something."""
    installed = []
    for file in files:
        try:
            if install(file):
                installed.append(file.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 -- user code (a module's sys.exit, too)
            log.warning("the uploaded file %s did not install: %s: %s", file.name,
                        type(exc).__name__, exc)
    return installed
