"""A failed task's traceback as a traceback object, rebuilt from the text the worker sent.

The worker sends the formatted traceback (frames cannot be pickled). ``Future.traceback()``
returns a real ``types.TracebackType`` chain, so ``traceback.format_tb``, ``print_tb`` and
``extract_tb`` accept it as they accept a local one: each remote frame becomes a frame of a
stub code object that carries the remote file name and function name, at the remote line.
Source lines are shown where the same file exists here (functions defined in the client).
cloudpickle names the file of a function it pickles by value ``<dynamic-code>``; such a frame
gets back the file of the function of that name and lines here, in ``__main__`` or a module
pickled by value (the functions the client sent that way).
"""
from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator

_FRAME_LINE = re.compile(r'^\s*File "(?P<file>.*)", line (?P<line>\d+), in (?P<name>.+)$')
_HEADER = "Traceback (most recent call last):"
_PICKLED_BY_VALUE = "<dynamic-code>"


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


def _sent_by_value() -> Iterator[types.ModuleType]:
    import cloudpickle
    for name in ["__main__", *sorted(cloudpickle.list_registry_pickle_by_value())]:
        module = sys.modules.get(name)
        if module is not None:
            yield module


def _codes(namespace: dict) -> Iterator[types.CodeType]:
    for value in list(namespace.values()):
        code = getattr(value, "__code__", None)
        if isinstance(code, types.CodeType):
            yield code
        elif isinstance(value, type):
            for member in list(vars(value).values()):
                code = getattr(getattr(member, "__func__", member), "__code__", None)
                if isinstance(code, types.CodeType):
                    yield code


def local_file(name: str, lineno: int) -> str | None:
    """The file here of the function ``name`` spanning line ``lineno`` that was pickled by
    value (so the worker only knew it as ``<dynamic-code>``), if there is one."""
    for module in _sent_by_value():
        for code in _codes(vars(module)):
            if code.co_name == name and code.co_firstlineno <= lineno <= max(
                    (line for _, _, line in code.co_lines() if line), default=0):
                return code.co_filename
    return None


def localize(text: str) -> str:
    """``text`` with each ``<dynamic-code>`` frame given its file here and its source line."""
    if _PICKLED_BY_VALUE not in text:
        return text
    import linecache
    out = []
    for line in text.splitlines(keepends=True):
        match = _FRAME_LINE.match(line.rstrip("\n"))
        if match is not None and match["file"] == _PICKLED_BY_VALUE:
            lineno = int(match["line"])
            filename = local_file(match["name"].strip(), lineno)
            if filename is not None:
                out.append(line.replace(f'"{_PICKLED_BY_VALUE}"', f'"{filename}"', 1))
                source = linecache.getline(filename, lineno).strip()
                if source:
                    out.append(f"    {source}\n")
                continue
        out.append(line)
    return "".join(out)


def build(text: str) -> types.TracebackType | None:
    """A traceback object with the frames of ``text``, outermost first; None without any."""
    tb = None
    for filename, lineno, name in reversed(frames_of(text)):
        if filename == _PICKLED_BY_VALUE:
            filename = local_file(name, lineno) or filename
        # tb_lasti -1: no instruction offset, so readers take the line from tb_lineno.
        tb = types.TracebackType(tb, _stub_frame(filename, name), -1, lineno)
    return tb


__all__ = ["build", "frames_of", "local_file", "localize"]
