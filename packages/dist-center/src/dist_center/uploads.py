"""Files clients uploaded for every worker (``upload-file``): kept as bytes, never read, and
handed to each worker as it registers, so that workers joining later have them too.

Bounded, as the center keeps them in memory (and, with a state directory, on disk): a file
of the same name replaces the older, and one that would pass the bounds is refused with the
reason, changing nothing.
"""
from __future__ import annotations

from dist_protocol.messages import UploadedFile

MAX_FILES = 100
MAX_BYTES = 64 * 2**20
# The name the snapshot of the durable state sends the kept files under (see ``snapshot``).
UPLOADS_HOLDER = "<uploads>"


def name_error(name: str) -> str | None:
    """Why ``name`` cannot be a file written beside a worker's others, or None."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        return (f"the name of an uploaded file must be a file name without folders, not "
                f"{name!r}")
    return None


class Uploads:
    def __init__(self, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> None:
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.files: dict[str, UploadedFile] = {}  # by name, oldest first

    @property
    def nbytes(self) -> int:
        return sum(file.content.nbytes for file in self.files.values())

    def keep(self, file: UploadedFile) -> str | None:
        """Keep ``file`` (replacing one of its name); the reason it is refused, or None."""
        error = name_error(file.name)
        if error is not None:
            return error
        if file.content.serializer != "bytes":
            return (f"{file.name}: an uploaded file's content is a 'bytes' payload, not "
                    f"{file.content.serializer!r}")
        replaced = self.files.get(file.name)
        count = len(self.files) + (replaced is None)
        if count > self.max_files:
            return (f"{file.name}: the center keeps at most {self.max_files} uploaded files "
                    f"(upload fewer, or under names already used)")
        size = self.nbytes - (replaced.content.nbytes if replaced else 0) + file.content.nbytes
        if size > self.max_bytes:
            return (f"{file.name}: the center keeps at most {self.max_bytes} bytes of uploaded "
                    f"files, and this one ({file.content.nbytes} bytes) would take them to "
                    f"{size} (install large packages on the workers instead)")
        self.files.pop(file.name, None)  # the newest last: workers install in upload order
        self.files[file.name] = file
        return None

    def all(self) -> list[UploadedFile]:
        return list(self.files.values())
