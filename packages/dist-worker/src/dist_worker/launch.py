"""``dworker``'s entry point: the collector is off while the worker's modules are imported.

Importing them makes some 27,000 objects the collector tracks, all of them living as long as
the process: with the default thresholds it would run about 60 times on the way and free
nothing (4% of the instructions of the imports). Once they are imported,
``tune_garbage_collector`` freezes them, so that neither the nanny's collections nor those of
the worker it forks pass over them (the worker then leaves the pages it shares with its nanny
unwritten), and turns the collector on with the server's thresholds before the command line is
read. ``python -m dist_worker.cli`` starts the same program, its imports collected as usual.
"""
from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from dist_protocol.comm import tune_garbage_collector

    from .cli import main as run_program

    tune_garbage_collector()
    run_program()


if __name__ == "__main__":
    main()
