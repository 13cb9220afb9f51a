"""A failed task's traceback as a traceback object, rebuilt from the text the worker sent.

The worker sends the formatted traceback (frames cannot be pickled). ``Future.traceback()``
returns a real ``types.TracebackType`` chain, so ``traceback.format_tb``, ``print_tb`` and
``extract_tb`` accept it as they accept a local one: each remote frame becomes a frame of a
stub code object that carries the remote file name and function name, at the remote line.
Source lines are shown where the same file exists here (functions defined in the client).
"""
from __future__ import annotations

import re
import types

_FRAME_LINE = re.compile(r'^\s*File "(?P<file>.*)", line (?P<line>\d+), in (?P<name>.+)$')
_HEADER = "Traceback (most recent call last):"


def frames_of(text: str) -> list[tuple[str, int, str]]:
    """``(file, line, function)`` of each frame of the last traceback in ``text`` (the one of
    the exception raised; earlier ones belong to exceptions it chained)."""
    start = text.rfind(_HEADER)
    if start < 0:
        return []
    frames = []
    for line in text[start + len(_HEADER):].splitlines():
        match = _FRAME_LINE.match(line)
        if match is not None:
            frames.append((match["file"], int(match["line"]), match["name"].strip()))
    return frames


def _stub_frame(filename: str, name: str) -> types.FrameType:
    code = compile("import sys\nframe = sys._getframe()", filename, "exec")
    if name.isidentifier():
        code = code.replace(co_name=name)
    elif name.startswith("<"):  # <module>, <lambda>, <listcomp>: keep the name as it was
        code = code.replace(co_name=name)
    namespace: dict = {"__name__": "__remote__"}
    exec(code, namespace)  # noqa: S102 -- a fixed two-line stub, only its frame is kept
    return namespace.pop("frame")


def build(text: str) -> types.TracebackType | None:
    """A traceback object with the frames of ``text``, outermost first; None without any."""
    tb = None
    for filename, lineno, name in reversed(frames_of(text)):
        # tb_lasti -1: no instruction offset, so readers take the line from tb_lineno.
        tb = types.TracebackType(tb, _stub_frame(filename, name), -1, lineno)
    return tb


__all__ = ["build", "frames_of"]
