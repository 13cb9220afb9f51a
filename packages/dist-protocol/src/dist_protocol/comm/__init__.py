"""The asyncio comm layer -- the only part of dist-protocol that does I/O.

- ``core``: ``Comm``, one connection on the event loop around a sans-I/O ``Connection``
  (``connection.py``): batched ``send``, ``recv`` or a handler, the handshake's outcome, closing.
- ``protocol``: asyncio's ``BufferedProtocol`` for a ``Comm``; reads go straight into the
  decoder's buffers, so a large frame lands in its own buffer with no copy.
- ``thread_writes``: the path by which a thread other than the loop's writes a message to an
  idle connection itself (``Comm.write_now``), through a duplicate of the socket's descriptor.
- ``endpoints``: ``connect`` and ``listen``, which run the handshake before handing on a comm.
- ``pool``: ``ConnectionPool``, one connection per peer address with requests answered by id
  (a worker's to its peers, a client's to the workers).
- ``process``: the event loop and the process settings servers and clients start with.
"""
from __future__ import annotations

from ..connection import COALESCE_BELOW
from ..defaults import HANDSHAKE_TIMEOUT, MAX_FRAMES_PER_BATCH
from .core import ABORT_LINGER, Comm, Handler, compressed
from .endpoints import Listener, connect, listen, run_handshake
from .process import (SERVER_GC_THRESHOLDS, new_event_loop, raise_open_file_limit, run,
                      tune_garbage_collector)
from .pool import ConnectionPool
from .protocol import StreamProtocol

__all__ = ["ABORT_LINGER", "COALESCE_BELOW", "Comm", "ConnectionPool", "HANDSHAKE_TIMEOUT",
           "Handler", "Listener",
           "MAX_FRAMES_PER_BATCH", "SERVER_GC_THRESHOLDS", "StreamProtocol", "compressed",
           "connect", "listen", "new_event_loop", "raise_open_file_limit", "run",
           "run_handshake", "tune_garbage_collector"]
