"""A failed task's exception as the client rebuilds it: the task's own, with what the worker
was doing and its traceback reaching the user on every supported Python."""
from __future__ import annotations

import sys
import traceback

import pytest
from dist_client.errors import RemoteError
from dist_client.task_errors import add_note, exception_from
from dist_protocol.messages import TaskErred
from dist_protocol.serialize import serialize

WORKER_TRACEBACK = """Traceback (most recent call last):
  File "/srv/worker/execution.py", line 120, in run_task
    result = function(*args, **kwargs)
  File "/home/user/analysis.py", line 7, in check_temperature
    raise ValueError(f"too hot: {degrees}")
ValueError: too hot: 200
"""


def erred(exception: BaseException | None, message: str) -> TaskErred:
    return TaskErred(key="k", exception_type=type(exception).__name__ if exception else "Boom",
                     message=message, traceback=WORKER_TRACEBACK,
                     exception=serialize(exception) if exception is not None else None)


def test_the_tasks_own_exception_with_the_workers_traceback_as_a_note():
    exc = exception_from(erred(ValueError("too hot: 200"), "too hot: 200"))
    assert type(exc) is ValueError and str(exc) == "too hot: 200"
    assert len(exc.__notes__) == 1
    assert exc.__notes__[0].startswith("Traceback on the worker:\n")
    assert 'line 7, in check_temperature' in exc.__notes__[0]


def test_what_the_worker_was_doing_is_a_note_of_its_own():
    exc = exception_from(erred(ModuleNotFoundError("No module named 'analysis'"),
                               "could not load the task's function"))
    assert exc.__notes__[0] == "could not load the task's function"
    assert "Traceback on the worker" in exc.__notes__[1]


def test_an_exception_not_rebuilt_here_is_a_remote_error_with_the_notes():
    exc = exception_from(erred(None, "boom"))
    assert isinstance(exc, RemoteError) and "Boom: boom" in str(exc)
    assert "check_temperature" in exc.__notes__[0]


def test_the_printed_exception_shows_where_the_worker_raised_it():
    """3.11 prints the notes; 3.10 prints none, so there the worker's frames are the
    exception's traceback, as the end of what is printed."""
    exc = exception_from(erred(ValueError("too hot: 200"), "too hot: 200"))
    try:
        raise exc
    except ValueError as caught:
        printed = "".join(traceback.format_exception(type(caught), caught,
                                                     caught.__traceback__))
    frame = 'File "/home/user/analysis.py", line 7, in check_temperature'
    if sys.version_info >= (3, 11):  # in the notes, after the exception's line
        assert printed.index("ValueError: too hot: 200") < printed.index(frame)
    else:  # the last frame of the traceback, before it
        assert printed.index(frame) < printed.index("ValueError: too hot: 200")
        assert printed.index('File "/srv/worker/execution.py", line 120') < printed.index(frame)


def test_add_note_keeps_the_notes_in_order_and_refuses_what_is_no_list():
    exc = ValueError("x")
    add_note(exc, "first")
    add_note(exc, "second")
    assert exc.__notes__ == ["first", "second"]
    other = ValueError("y")
    other.__notes__ = "not a list"
    with pytest.raises(TypeError):
        add_note(other, "z")


class Unprintable(Exception):
    """An exception of the user's own whose ``__str__`` and ``__repr__`` fail."""

    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")


def test_an_exception_whose_str_fails_is_still_rebuilt_with_the_notes():
    exc = exception_from(erred(Unprintable("x"), "<Unprintable: str() failed>"))
    assert type(exc) is Unprintable
    assert exc.__notes__[0] == "<Unprintable: str() failed>"
    assert exc.__notes__[1].startswith("Traceback on the worker:\n")
