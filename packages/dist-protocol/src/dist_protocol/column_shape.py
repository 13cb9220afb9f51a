"""The shape of column blocks and column lists (feature ``columns``), and what they stand for.

Both hold ``count`` records as ``columns`` (field name -> an array of ``count`` values) and
``shared`` (field name -> the value every record has). With the feature ``frame-columns`` a
column may also be a frame column: ``{"serializer": S, "frames": [index or nil, ...]}``, the
array of one-frame payloads of serializer ``S`` it stands for (nil: absent). Checking that
shape and writing the records back out as maps needs nothing of the message catalogue, so the
reference converters of ``wiretypes`` use it as well as the generated codec of ``columns``.
No I/O.
"""
from __future__ import annotations

from typing import Any

from .errors import InvalidMessage

MAX_COUNT = 100_000  # records in one block or list: a receiver refuses more
LIST_KEYS = ("count", "columns", "shared")  # a column list is a map of these, in this order


def is_frame_column(column: Any, count: int) -> bool:
    """Whether ``column`` has a frame column's shape: a map of exactly a str ``serializer``
    and ``frames``, an array of ``count`` values (each checked where it is read)."""
    return (type(column) is dict and len(column) == 2
            and type(column.get("serializer")) is str
            and type(column.get("frames")) is list and len(column["frames"]) == count)


def frame_column_values(column: dict[str, Any]) -> list[Any]:
    """The payload references a frame column stands for (nil stays nil)."""
    serializer = column["serializer"]
    return [None if index is None else {"serializer": serializer, "frames": [index]}
            for index in column["frames"]]


def check_shape(count: Any, columns: Any, shared: Any, what: str,
                reserved: str | None = None, frame_columns: bool = False) -> None:
    """Raise ``InvalidMessage`` unless ``count`` is an int from 1 to ``MAX_COUNT``, both maps
    are maps with str keys, ``columns`` has at least one column and each is an array of
    ``count`` values (or, with ``frame_columns``, a frame column of ``count`` values), and no
    field is in both maps (nor is ``reserved``)."""
    if type(count) is not int or not 1 <= count <= MAX_COUNT:
        raise InvalidMessage(f"a {what}'s count must be an int from 1 to {MAX_COUNT:,}, "
                             f"not {count!r}")
    if type(columns) is not dict or type(shared) is not dict:
        raise InvalidMessage(f"a {what}'s columns and shared values must be maps")
    if not columns:
        raise InvalidMessage(f"a {what} has at least one column")
    for name, column in columns.items():
        if type(name) is not str or name == reserved or name in shared:
            raise InvalidMessage(f"{what} column {name!r}: a field name given once"
                                 + (f", not {reserved!r}" if reserved else ""))
        if (type(column) is not list or len(column) != count) and not (
                frame_columns and is_frame_column(column, count)):
            raise InvalidMessage(f"{what} column {name!r} must be an array of {count} values"
                                 + (" or a frame column" if frame_columns else ""))
    for name in shared:
        if type(name) is not str or name == reserved:
            raise InvalidMessage(f"{what} shared value {name!r}: a field name"
                                 + (f", not {reserved!r}" if reserved else ""))


def list_parts(value: dict[Any, Any], frame_columns: bool = False) -> tuple[Any, Any, Any]:
    """``(count, columns, shared)`` of a column list, its shape checked (``frame_columns``:
    the connection agreed ``frame-columns``)."""
    if len(value) != 3 or any(key not in value for key in LIST_KEYS):
        raise InvalidMessage("a column list is a map of exactly 'count', 'columns' and "
                             "'shared'")
    count, columns, shared = value["count"], value["columns"], value["shared"]
    check_shape(count, columns, shared, "column list", frame_columns=frame_columns)
    return count, columns, shared


def fresh(value: Any) -> Any:
    """A copy of a msgpack value's lists and maps (its scalars are immutable)."""
    kind = type(value)
    if kind is list:
        return [fresh(item) for item in value]
    if kind is dict:
        return {key: fresh(item) for key, item in value.items()}
    return value


def expand(count: int, columns: dict[str, Any], shared: dict[str, Any]) -> list[dict[str, Any]]:
    """The maps ``count`` records given as columns stand for: each has every shared value (its
    own copy) and its own value of every column (a frame column's payload references)."""
    columns = {name: frame_column_values(column) if type(column) is dict else column
               for name, column in columns.items()}
    try:
        out = []
        for i in range(count):
            record = {name: fresh(value) for name, value in shared.items()}
            for name, column in columns.items():
                record[name] = column[i]
            out.append(record)
        return out
    except RecursionError:
        raise InvalidMessage("a shared value is nested too deeply") from None


def expand_list(value: dict[Any, Any], frame_columns: bool = False) -> list[dict[str, Any]]:
    """The record maps a column list stands for; ``InvalidMessage`` if it is malformed."""
    return expand(*list_parts(value, frame_columns))


__all__ = ["LIST_KEYS", "MAX_COUNT", "check_shape", "expand",
           "expand_list", "frame_column_values", "fresh", "is_frame_column", "list_parts"]
