"""The traceback of an error that ``result()`` or ``gather()`` raises to the caller, without
the frames of dist's own modules (and of ``concurrent.futures``, which it waits through, as
dask leaves those out too): the caller's frames, then the task's where the exception
brought them, as dask.distributed's client leaves out its own (dask's ``shorten_traceback``).
The frame where the error was raised is kept whatever it is. New traceback objects are made:
the stored exception's traceback, which every future of the key shares, stays as it was."""
from __future__ import annotations

import re
import types

_DIST_FILES = re.compile(r".*(dist_client[\\/]|dist_protocol[\\/]|dist_worker[\\/]execution\.py"
                         r"|concurrent[\\/]futures[\\/])")


def without_dist_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    kept: list[types.TracebackType] = []
    while tb is not None:
        if tb.tb_next is None or not _DIST_FILES.match(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    shortened = None
    for entry in reversed(kept):
        shortened = types.TracebackType(shortened, entry.tb_frame, entry.tb_lasti,
                                        entry.tb_lineno)
    return shortened


__all__ = ["without_dist_frames"]
