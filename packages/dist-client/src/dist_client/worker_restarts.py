"""dask's ``restart_workers``: restart some workers through their nannies (protocol feature
``restart-workers``), waiting until each is registered again.

Unlike ``restart()``, nothing is forgotten: the other workers keep their tasks and values, and
the center runs again elsewhere what the restarted workers were running, and computes again
what only they held, as when any worker dies (a task running there counts that death, as in
dask). A worker is found again after its restart by its nanny: the new process may have
another address.
"""
from __future__ import annotations

from typing import Any

from dist_protocol.messages import RestartWorkers
from dist_protocol.timeouts import wait_for

from .arguments import duration
from .errors import ClusterError


async def restart_workers(core: Any, workers: Any, timeout: Any,
                          raise_for_error: bool) -> dict[str, str]:
    """``{worker as given: "OK" | "timed out"}``; ``TimeoutError`` with ``raise_for_error``
    when one is not back within ``timeout`` (default: four times the executor's connection
    timeout, as dask's); ``ValueError`` for a worker unknown or without a nanny (nothing is
    restarted then)."""
    if isinstance(workers, str) or not all(isinstance(w, str) for w in workers):
        raise TypeError(f"restart_workers takes a list of worker addresses or names, not "
                        f"{workers!r}")
    given = list(workers)
    wait = 4 * core.timeout if timeout is None else duration("timeout", timeout)
    center = core.center
    if center is not None and "restart-workers" not in center.features:
        raise ClusterError(f"the center at {core.address} cannot restart chosen workers (an "
                           "older release: it did not announce the protocol feature "
                           "'restart-workers'); restart() restarts them all")
    reply = await wait_for(core.ask(lambda i: RestartWorkers(id=i, workers=given,
                                                             timeout=wait)),
                           wait + 5, f"restart_workers: no answer within {wait + 5} s")
    if reply.error:
        raise ValueError(f"restart_workers: {reply.error}")
    late = [worker for worker, status in reply.status.items() if status != "OK"]
    if late and raise_for_error:
        raise TimeoutError(f"restart_workers: {len(late)}/{len(reply.status)} worker(s) not "
                           f"back within {wait:g} s: {', '.join(late)} (they were told to "
                           "restart; raise_for_error=False returns the status instead)")
    return dict(reply.status)


__all__ = ["restart_workers"]
