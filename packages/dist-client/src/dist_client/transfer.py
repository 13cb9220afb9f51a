"""Moving data between the client and the workers: gather (one request per worker) and scatter.

Runs on the client's I/O thread. The center is asked only where data is (or should go);
the data itself travels between the client and the workers directly.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from dist_protocol.comm import Comm, ConnectionPool, connect
from dist_protocol.errors import CommClosedError, NoRoomForFrame, ProtocolError
from dist_protocol.messages import Data, DataStored, GetData, Message, PutData
from dist_protocol.environment import describe, local_environment, pickle_tag
from dist_protocol.messages import Environment
from dist_protocol.serialize import (CodeRefused, Payload, SerializationError, deserialize,
                                     deserialize_pickle_frame, deserialize_received)


class WorkerConnections(ConnectionPool):
    """The client's connections to workers (the comm layer's ``ConnectionPool``), which also
    says which worker runs another Python than this client."""

    def __init__(self, token: str | None, ssl_context, name: str):
        super().__init__(functools.partial(connect, role="client", token=token, name=name,
                                           ssl_context=ssl_context), _closed_error)

    def another_python(self, address: str) -> Environment | None:
        """What the worker at ``address`` runs, when that is another Python minor version
        than this client's (as it said in its handshake)."""
        env = self.peer_environment(address)
        return env if env is not None and pickle_tag(env) != _own_tag() else None


def _closed_error(comm: Comm) -> Exception:
    if isinstance(comm.abort_error, NoRoomForFrame):
        # This process is out of memory: asking again would fetch it all again, and fail
        # again, for as long as the gather is patient.
        return MemoryError(f"no room in this process for the data worker "
                           f"{comm.peer_address} sends: {comm.abort_error.message}")
    return CommClosedError(
        f"connection to worker {comm.peer_address} closed: {comm.close_reason}")


TRANSIENT = (OSError, CommClosedError, ProtocolError, TimeoutError)
MAX_KEYS_PER_REQUEST = 5_000
# Keys asked of one worker in one request add up to at most this many bytes (or are one key):
# a worker that spilled its results to disk reads each request's values back into memory at
# once, so one request for all of them would take it past its memory limit.
MAX_BYTES_PER_REQUEST = 50_000_000
# A fetch taking longer than this asks the center, as often, whether the worker still holds
# the keys: a hung worker (stopped, frozen) keeps its connection open and never answers.
HOLDER_CHECK_INTERVAL = 1.0

class Unserializable(str):
    """Why a holder could not serialize a value (a failure to fetch that asking again, or
    waiting, does not mend)."""


StillHeld = Callable[[str, list[str]], Awaitable[bool]]


def _pieces(keys: list[str], sizes: dict[str, int]) -> list[list[str]]:
    """``keys`` cut into requests of at most ``MAX_KEYS_PER_REQUEST`` keys and
    ``MAX_BYTES_PER_REQUEST`` bytes (a larger key goes alone)."""
    pieces: list[list[str]] = []
    current: list[str] = []
    total = 0
    for key in keys:
        size = sizes.get(key, 0)
        if current and (len(current) >= MAX_KEYS_PER_REQUEST
                        or total + size > MAX_BYTES_PER_REQUEST):
            pieces.append(current)
            current, total = [], 0
        current.append(key)
        total += size
    if current:
        pieces.append(current)
    return pieces


async def fetch(workers: WorkerConnections, holders: dict[str, list[str]],
                still_held: StillHeld | None = None, sizes: dict[str, int] | None = None
                ) -> tuple[dict, dict]:
    """Fetch keys from their holders: one request per worker, cut into pieces for very large
    gathers (frame limits, and ``sizes`` as far as they are known) that go one after the
    other. Returns (payloads, failed) where ``failed`` maps each key not obtained to the
    reason. ``still_held(address, keys)`` says whether the center still counts a slow worker
    as a holder; if not, it is given up on."""
    import random  # here, not at import: a client fetching no data from workers never needs it

    plan: dict[str, list[str]] = {}
    for key, addresses in holders.items():
        if addresses:
            plan.setdefault(random.choice(addresses), []).append(key)
    payloads: dict[str, Payload] = {}
    failed: dict[str, str] = {k: "no worker holds it" for k, a in holders.items() if not a}
    no_room: list[MemoryError] = []

    async def one(address: str, keys: list[str]) -> None:
        try:
            reply = await _unless_given_up(
                workers, address, keys, still_held,
                workers.request(address, lambda i: GetData(id=i, keys=keys)))
        except MemoryError as exc:
            no_room.append(exc)
            return
        except TRANSIENT as exc:
            for key in keys:
                failed[key] = f"worker {address}: {type(exc).__name__}: {exc}"
            return
        assert isinstance(reply, Data)
        payloads.update(reply.data)
        made_by = workers.another_python(address)
        if made_by is not None:
            for key in _holding_code(reply.data):
                del payloads[key]
                failed[key] = Unserializable(
                    f"worker {address} made it on {describe(made_by)} and it holds Python code "
                    f"(a function, or a class's methods, pickled by value), which this client, "
                    f"on {describe(local_environment())}, does not run: bytecode differs "
                    f"between Python versions")
        for key in reply.missing:
            failed[key] = f"worker {address} no longer holds it"
        for key, why in reply.errors.items():
            failed[key] = Unserializable(f"worker {address} cannot serialize it: {why}")

    async def from_worker(address: str, keys: list[str]) -> None:
        for piece in _pieces(keys, sizes or {}):
            if no_room:
                return
            await one(address, piece)

    await asyncio.gather(*(from_worker(a, k) for a, k in plan.items()))
    if no_room:
        payloads.clear()  # (what came is let go before the error travels to the caller)
        total = sum((sizes or {}).get(key, 0) for key in holders)
        raise MemoryError(f"gathering {len(holders)} values"
                          + (f" ({total / 1e6:,.0f} MB in all)" if total else "")
                          + f": {no_room[0]}. Gather fewer at a time (with as_completed, or "
                          "in parts), or give this process more memory") from no_room[0]
    return payloads, failed


async def _unless_given_up(workers: WorkerConnections, address: str, keys: list[str],
                           still_held: StillHeld | None, request: Awaitable[Message]
                           ) -> Message:
    """The reply to ``request``, unless the center stops counting ``address`` as a holder of
    ``keys`` while we wait (it dropped the worker): then the request fails."""
    reply = asyncio.ensure_future(request)
    try:
        while True:
            done, _ = await asyncio.wait({reply}, timeout=HOLDER_CHECK_INTERVAL)
            if done:
                return reply.result()
            if still_held is not None and not await still_held(address, keys):
                workers.drop(address, "the center no longer counts it as a holder")
                raise CommClosedError(f"worker {address} did not answer, and the center "
                                      "no longer counts it as a holder")
    finally:
        reply.cancel()


@functools.cache
def _own_tag() -> str:
    return pickle_tag(local_environment())  # (asked when a worker's values arrive, not at import)


def _holding_code(payloads: dict[str, Payload]) -> list[str]:
    """The keys of ``payloads`` (from a worker on another Python minor version) whose pickles
    hold Python code, which this process must not build: bytecode of another version can
    crash it or compute wrong results. Read once here without code (the value is let go;
    ``load`` reads the rest as usual), only for such a worker's values."""
    holding = []
    for key, payload in payloads.items():
        if payload.serializer != "pickle":
            continue
        try:
            deserialize(payload, code=False)
        except CodeRefused:
            holding.append(key)
        except SerializationError:
            pass  # (``load`` says why, as for any value)
    return holding


def load(payloads: dict[str, Payload | bytes]) -> dict[str, Any]:
    """The values of ``payloads``: Payloads as they arrived (read once: a large ``bytes``
    value is moved out of its frame), or the one pickle frame a key keeps of a small value
    (``KeyState.small``)."""
    return {key: deserialize_pickle_frame(payload) if isinstance(payload, bytes)
            else deserialize_received(payload) for key, payload in payloads.items()}


def load_one(payload: Payload | bytes) -> Any:
    """``load`` of one value."""
    if isinstance(payload, bytes):
        return deserialize_pickle_frame(payload)
    return deserialize(payload)


async def push(workers: WorkerConnections, targets: dict[str, list[str]],
               payloads: dict[str, Payload], batch_bytes: dict[str, int] | None = None
               ) -> dict[str, list[str]]:
    """Send each key's payload to its target workers, one request per worker -- or, for a
    worker with an entry in ``batch_bytes``, requests of about that many bytes at most, one
    after another, so that it stores (and spills) each batch before it reads the next
    instead of holding all the data at once."""
    per_worker: dict[str, dict[str, Payload]] = {}
    for key, addresses in targets.items():
        for address in addresses:
            per_worker.setdefault(address, {})[key] = payloads[key]
    bounds = batch_bytes or {}

    async def one(address: str, data: dict[str, Payload]) -> list[str]:
        stored: list[str] = []
        for batch in _batches(data, bounds.get(address)):
            reply = await workers.request(address, _put_data(batch))
            assert isinstance(reply, DataStored)
            stored.extend(reply.keys)
        return stored

    results = await asyncio.gather(*(one(a, d) for a, d in per_worker.items()))
    stored: dict[str, list[str]] = {}
    for address, keys in zip(per_worker, results):
        for key in keys:
            stored.setdefault(key, []).append(address)
    return stored


def _put_data(batch: dict[str, Payload]) -> Callable[[int], Message]:
    return lambda request_id: PutData(id=request_id, data=batch)


def _batches(data: dict[str, Payload], bound: int | None) -> list[dict[str, Payload]]:
    """``data`` in batches of at most ``bound`` bytes (one value a batch, however large,
    at least); all of it at once without a bound."""
    if bound is None:
        return [data]
    batches: list[dict[str, Payload]] = []
    batch: dict[str, Payload] = {}
    size = 0
    for key, payload in data.items():
        if batch and size + payload.nbytes > bound:
            batches.append(batch)
            batch, size = {}, 0
        batch[key] = payload
        size += payload.nbytes
    if batch:
        batches.append(batch)
    return batches
