"""Which peers a worker asks for the inputs it lacks, in which requests: a plan made from
what it knows of the inputs (who holds each, how large) and of its peers (requests not yet
answered). ``WorkerState`` carries the plan out; this module decides nothing else.
"""
from __future__ import annotations

from collections.abc import Iterable

MAX_KEYS_PER_FETCH = 1000
# Inputs asked of one peer at once add up to at most this (or are one key): the peer reads
# spilled values back into memory to send them, and they all arrive here at once, to be
# unpickled before any task reading them can start. A megabyte is a few tasks' inputs in a
# shuffle: the first of them starts while the next are on their way (with dask's 50 MB, a
# shuffle's outputs waited for every piece from the other worker before the first began).
MAX_FETCH_BYTES = 1_000_000
# Requests to one peer at once: it serves the next while this worker unpickles the last, so
# that inputs of many megabytes do not pay a round trip per megabyte.
REQUESTS_PER_PEER = 2

Missing = tuple[str, list[str], int]  # an input: its key, the peers to ask, its size


def plan_requests(missing: Iterable[Missing], busy_peers: dict[str, int], incoming_bytes: int,
                  any_in_flight: bool, one_at_a_time: bool,
                  incoming_bytes_limit: int | None) -> dict[str, list[list[str]]]:
    """The requests to each peer for the ``missing`` inputs, in their order: of at most
    ``MAX_FETCH_BYTES`` (or one key) each, ``REQUESTS_PER_PEER`` to a peer at once
    (counting the ``busy_peers``' unanswered ones), to the peer least asked.

    What is in flight from all peers together is bounded: by ``incoming_bytes_limit``
    (``incoming_bytes`` are on their way already), and to one key ``one_at_a_time`` (memory
    above the target, or the worker paused: every arriving value is unpickled in memory
    first). A key is always planned when none is in flight, however large, so that the limit
    delays inputs and never blocks them."""
    requests: dict[str, list[list[str]]] = {}  # peer -> the requests planned to it
    last_bytes: dict[str, int] = {}  # peer -> bytes of its last planned request
    planned = incoming_bytes
    for key, holders, size in missing:
        if any_in_flight or requests:
            if one_at_a_time:
                break
            if incoming_bytes_limit is not None and planned + size > incoming_bytes_limit:
                break
        usable = [w for w in holders
                  if (w in requests and last_bytes[w] + size <= MAX_FETCH_BYTES)
                  or busy_peers.get(w, 0) + len(requests.get(w, ())) < REQUESTS_PER_PEER]
        if not usable:
            continue  # the rest go as requests are answered
        peer = min(usable, key=lambda w: (busy_peers.get(w, 0) + len(requests.get(w, ())),
                                          sum(map(len, requests.get(w, ())))))
        to_peer = requests.setdefault(peer, [])
        if to_peer and last_bytes[peer] + size <= MAX_FETCH_BYTES:
            to_peer[-1].append(key)
            last_bytes[peer] += size
        else:
            to_peer.append([key])
            last_bytes[peer] = size
        planned += size
    return requests


__all__ = ["MAX_FETCH_BYTES", "MAX_KEYS_PER_FETCH", "REQUESTS_PER_PEER", "plan_requests"]
