"""``dcenter``'s entry point: choose the allocator before anything is imported.

The center runs on the C library's allocator (see ``use_system_allocator``). The interpreter
reads ``PYTHONMALLOC`` only when it starts, so the program starts once more with it set; done
here, before the center's modules are imported (about half a second of the start-up on a
busy machine), that second start costs only a bare interpreter. Whoever launches the center
can set ``PYTHONMALLOC`` itself and save even that (the local cluster does).
"""
from __future__ import annotations

import gc

from .allocator import use_system_allocator


def main() -> None:
    use_system_allocator()
    # Importing the center's modules makes some 26,000 objects the collector tracks, all of
    # them living as long as the center: it would run about 60 times on the way (4% of the
    # instructions of the imports) and free nothing. ``run_program`` turns it on again, with
    # those objects frozen (``tune_garbage_collector``).
    gc.disable()
    from .cli import run_program
    run_program()


if __name__ == "__main__":
    main()
