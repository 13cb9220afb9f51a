"""Installing the files clients uploaded, which the center hands a worker as it registers.

Each file is written to this process's upload folder, on its import path: the folder a
client's ``upload_file`` writes to when it reaches the workers present
(``dist_protocol.uploaded_files``, which both use). A ``.py`` file is imported when its
upload asked, an archive (``.zip``, ``.egg``, ``.whl``) goes on the import path. A file
this process holds already, byte for byte, is left alone: a worker registering again (after
a lost connection or a restart of the center) does not import its modules a second time. A
file that fails is logged; the worker goes on, as it would with a task that failed.
"""
from __future__ import annotations

import logging

from dist_protocol import uploaded_files
from dist_protocol.messages import UploadedFile

log = logging.getLogger("dist.worker")


def install(file: UploadedFile) -> bool:
    """Write ``file`` (and import or add it to the path); whether anything changed."""
    content = b"".join(bytes(frame) for frame in file.content.frames)
    return uploaded_files.install(file.name, content, file.load, unless_same=True) is not None


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
