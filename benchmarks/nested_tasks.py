"""Recursive Fibonacci as tasks that submit tasks, for each system (see nested.py).

Importable on every worker (the harness puts this directory on their PYTHONPATH), so each
system pickles these by reference. Every call with ``n >= 2`` submits its two sub-calls and
waits on them, giving its thread (Ray: its CPU) back while it waits. ``unique``: every call is
a task of its own (dist and dask with ``pure=False``, as Ray's calls always are); otherwise
equal calls share a key (dist and dask) and run once.
"""
from __future__ import annotations


def dist_fib(n, unique=False):
    if n < 2:
        return n
    from dist_client import worker_executor
    with worker_executor() as e:
        a = e.submit(dist_fib, n - 1, unique, pure=not unique)
        b = e.submit(dist_fib, n - 2, unique, pure=not unique)
        return a.result() + b.result()


def dask_fib(n, unique=False):
    if n < 2:
        return n
    from distributed import worker_client
    with worker_client() as client:
        a = client.submit(dask_fib, n - 1, unique, pure=not unique)
        b = client.submit(dask_fib, n - 2, unique, pure=not unique)
        return a.result() + b.result()


def _ray_fib(n):
    import ray
    if n < 2:
        return n
    # ray.get in a task releases the task's CPU while it blocks.
    return sum(ray.get([ray_fib().remote(n - 1), ray_fib().remote(n - 2)]))


_remote = None


def ray_fib():
    """The remote function (made once per process: ``ray.remote`` needs Ray imported)."""
    global _remote
    if _remote is None:
        import ray
        _remote = ray.remote(num_cpus=1)(_ray_fib)
    return _remote


def calls(n: int) -> int:
    """Calls (tasks) of fib(n) when none is shared."""
    return 1 if n < 2 else 1 + calls(n - 1) + calls(n - 2)


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
