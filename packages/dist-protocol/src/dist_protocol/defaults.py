"""Defaults the programs' command lines show, kept apart from the modules that use them so
that reading the command line imports nothing else of the protocol."""
from __future__ import annotations

# A batch is cut after this many frames: well under any receiver's frame-count limit.
MAX_FRAMES_PER_BATCH = 10_000
# Seconds a new connection has to complete the handshake.
HANDSHAKE_TIMEOUT = 10.0
