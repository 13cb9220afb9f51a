"""Timeouts that look and behave the same on every supported Python.

From 3.11 on, ``asyncio.TimeoutError`` and ``concurrent.futures.TimeoutError`` are the builtin
``TimeoutError``. On 3.10 they are three unrelated classes, so a program catching the one its
own style knows would miss the others. Every timeout dist raises is ``TimeoutError`` from here:
the builtin on 3.11 and later, and on 3.10 a class deriving from all three, so that
``except TimeoutError``, ``except asyncio.TimeoutError`` and ``except
concurrent.futures.TimeoutError`` each catch it there as they do on 3.11.
"""
from __future__ import annotations

import asyncio
import builtins
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

if sys.version_info >= (3, 11):
    TimeoutError = builtins.TimeoutError
else:
    import concurrent.futures

    class TimeoutError(builtins.TimeoutError, asyncio.TimeoutError,
                       concurrent.futures.TimeoutError):
        """A timeout, whichever of Python 3.10's three ``TimeoutError`` classes one catches."""


async def wait_for(awaitable: Awaitable[T], timeout: float | None, message: str = "") -> T:
    """``await awaitable``, cancelling it with ``TimeoutError(message)`` after ``timeout``
    seconds (``None``: no limit), as ``async with asyncio.timeout(timeout)`` does; a
    ``TimeoutError`` of the awaitable's own goes on as it is.

    Whether it times out or the caller is cancelled, the awaitable has finished (its cleanup
    has run) when the error is raised. A cancellation from outside is never lost, even when the
    awaitable had just finished: Python 3.10's ``asyncio.wait_for`` returned its result then.
    """
    try:
        if timeout is None:
            return await awaitable
        if sys.version_info >= (3, 11):
            return await _within_deadline(awaitable, timeout, message)
        return await _within_wait(asyncio.ensure_future(awaitable), timeout, message)
    finally:
        # A failed future holds its error, whose traceback holds this frame: without this,
        # the three would go with the cycle collector only.
        del awaitable


if sys.version_info >= (3, 11):
    async def _within_deadline(awaitable: Awaitable[T], timeout: float, message: str) -> T:
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await awaitable
        except TimeoutError:
            if not deadline.expired():
                raise  # the awaitable's own
            raise TimeoutError(message or f"not done within {timeout:g} s") from None
        finally:
            del awaitable


async def _within_wait(inner: asyncio.Future[T], timeout: float, message: str) -> T:
    """Python 3.10 has no ``asyncio.timeout``: ``inner`` (a task or future) is waited for
    beside this task rather than in it."""
    try:
        try:
            done, _ = await asyncio.wait((inner,), timeout=timeout)
        except asyncio.CancelledError:
            await _cancel_and_wait(inner)
            if not inner.cancelled():
                inner.result()  # an error in its cleanup goes on instead, as on 3.11
            raise
        if not done:
            await _cancel_and_wait(inner)
            if inner.cancelled():
                raise TimeoutError(message or f"not done within {timeout:g} s") from None
        return inner.result()
    finally:
        del inner


async def _cancel_and_wait(inner: asyncio.Future[T]) -> None:
    inner.cancel()
    try:
        await asyncio.wait((inner,))
    except asyncio.CancelledError:  # cancelled again meanwhile: it is not waited for twice
        inner.cancel()
        raise
