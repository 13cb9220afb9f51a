"""Defaults ``dcenter``'s command line shows, kept apart from the modules that use them so that
reading the command line imports nothing else of the center."""
from __future__ import annotations

# Tasks without inputs a worker is sent per thread (as dask's ``worker-saturation``): the rest
# wait in the center's queue, so that a worker reads new data only as it has room to reduce
# it. ``inf`` sends them all at once. Short tasks get BUFFER_SECONDS of work on top
# (``placement``).
DEFAULT_SATURATION = 1.1
