"""Checks of the numbers a user passes to ``submit``, ``map``, ``replicate`` and ``restart``.

The center answers a message with a NaN or negative number by closing the connection
(``invalid-message``): a typo in one call would cost the executor its connection and fail
every pending future. So the client refuses such values itself, naming the argument, before
anything is sent or changed.
"""
from __future__ import annotations

import concurrent.futures
import datetime
import math
import numbers
import re
import threading
from typing import Any

from .local_options import LocalOptions


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__} ({value!r})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def whole_number(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int (a float is truncated, as ``int()`` does), refusing NaN,
    infinities, non-numbers and values below ``minimum``."""
    number = int(_real(name, value))
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    return number


def seconds(name: str, value: Any) -> float:
    """A duration: a finite number of seconds, at least 0."""
    number = _real(name, value)
    if number < 0:
        raise ValueError(f"{name} must be at least 0 seconds, not {value!r}")
    return number


_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3,
          "milliseconds": 1e-3, "us": 1e-6, "microseconds": 1e-6, "ns": 1e-9, "m": 60.0,
          "min": 60.0, "minutes": 60.0, "h": 3600.0, "hr": 3600.0, "hours": 3600.0}


# Durations already read from text: the same few strings come with every submit and map
# ("60s", "100ms"), and parsing one again costs more than the rest of the options together.
_TEXT_SECONDS: dict[str, float] = {}
_TEXT_SECONDS_KEPT = 64


def duration(name: str, value: Any) -> float:
    """A duration as dask writes it: seconds, a string with a unit ("100ms", "60s",
    "2 minutes") or a ``datetime.timedelta``, at least 0."""
    if type(value) is str:
        known = _TEXT_SECONDS.get(value)
        if known is not None:
            return known
    if not isinstance(value, str):
        if isinstance(value, datetime.timedelta):
            return seconds(name, value.total_seconds())
        return seconds(name, value)
    match = _DURATION.fullmatch(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{name} must be seconds or a duration such as '100ms' or '60s', "
                         f"not {value!r}")
    number = seconds(name, float(match.group(1)) * _UNITS[unit])
    if type(value) is str and len(_TEXT_SECONDS) < _TEXT_SECONDS_KEPT:
        _TEXT_SECONDS[value] = number
    return number


def given_timeout(name: str, value: Any) -> Any:
    """A timeout to wait for: None, seconds (left as given, as ``concurrent.futures`` takes
    them), or as dask also takes it, a duration such as ``"10s"`` or a ``timedelta``. A
    future given where the timeout goes (``wait(x, y)``) is refused, saying how to pass
    several."""
    if value is None:  # (most waits: nothing to check)
        return None
    if isinstance(value, (str, datetime.timedelta)):
        return duration(name, value)
    if isinstance(value, concurrent.futures.Future):
        raise TypeError(f"{name} must be a number of seconds, not a future: give several "
                        f"futures as one list, wait([x, y]), not wait(x, y)")
    if isinstance(value, (int, float)) and value > threading.TIMEOUT_MAX:
        # Longer than a thread can block for (about 292 years): ``float("inf")``, ``1e10``,
        # written to mean "no limit". The lock a waiting thread sleeps on raised
        # OverflowError for it, once the result was not there at the first look.
        return None
    return value


def data_path(name: str, value: Any) -> None:
    """dask's ``direct=``: True, False or None (which path data takes; dist's always goes
    straight between the client and the workers)."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None, not {value!r}")


def resource_amounts(resources: Any) -> dict[str, float] | None:
    """``{"GPU": 1, ...}``: names are strings, amounts finite and at least 0."""
    if not resources:
        return None
    if not hasattr(resources, "items"):
        raise TypeError(f"resources must be a mapping of resource names to amounts, "
                        f"not {type(resources).__name__}")
    out = {}
    for name, amount in resources.items():
        if not isinstance(name, str):
            raise TypeError(f"resources: the name {name!r} is not a string")
        number = _real(f"resources[{name!r}]", amount)
        if number < 0:
            raise ValueError(f"resources[{name!r}] must be at least 0, not {amount!r}")
        out[name] = amount
    return out


def worker_names(workers: Any) -> list[str] | None:
    """``workers=``: one address or name, or several."""
    if isinstance(workers, str):
        return [workers]
    if not workers:
        return None
    names = list(workers)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"workers: {name!r} is not a worker address or name (a string)")
    return names


__all__ = ["data_path", "duration", "resource_amounts", "seconds", "whole_number", "worker_names"]


def local_cluster_shape(address: object, options: LocalOptions) -> dict[str, Any]:
    """The keywords for the local cluster ``Executor()`` starts when given no address: those
    given, the numbers checked (``n_workers`` workers of ``threads_per_worker`` threads, each
    with ``memory_limit`` as ``dworker --memory-limit`` reads it: bytes, "4GB", a fraction of
    the machine, "auto"). With an address nothing is started, so these would silently mean
    nothing: refused instead."""
    given = options.given()
    if address is not None and given:
        raise TypeError(f"{', '.join(given)} shape the local cluster that Executor() starts "
                        "when given no address; with an address they cannot apply")
    if "n_workers" in given:
        given["n_workers"] = whole_number("n_workers", given["n_workers"], minimum=0)
    if "threads_per_worker" in given:
        given["threads_per_worker"] = whole_number("threads_per_worker",
                                                   given["threads_per_worker"], minimum=1)
    if "processes" in given and not isinstance(given["processes"], bool):
        raise TypeError(f"processes must be True or False, not {given['processes']!r}")
    return given
