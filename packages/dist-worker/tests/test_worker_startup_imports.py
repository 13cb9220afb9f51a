"""What ``dworker`` imports before its nanny forks the worker stays what a worker needs until
its first result: the compression codecs are imported at the first frame compressed (none on
loopback, none for small frames), cloudpickle at the first value plain pickle declines. These
tests fail when an import at module level brings one back into every start."""
from __future__ import annotations

import subprocess
import sys

NOT_AT_STARTUP = ("lz4", "zstandard", "platform", "cloudpickle", "sqlite3", "psutil")


def test_importing_the_worker_imports_nothing_only_later_work_needs():
    code = ("import sys; import dist_worker.cli, dist_worker.server; "
            "print(' '.join(n for n in sys.argv[1:] if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *NOT_AT_STARTUP], capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == []


def test_a_spilled_frame_that_compresses_imports_its_codec_then():
    code = ("import sys; from dist_worker.spill import compress; "
            "codec, _ = compress(b'x' * 100_000, 'lz4'); print(codec, 'lz4' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["1", "True"]


def test_dworker_runs_with_the_collector_on_its_imports_frozen():
    """``dworker``'s entry point imports the worker with the collector off, and turns it on
    again, with the server's thresholds and the imported objects frozen, before it reads the
    command line (the program is replaced by a report of that)."""
    code = ("import gc; import dist_worker.cli as cli; from dist_worker import launch; "
            "cli.main = lambda: print('running', gc.isenabled(), gc.get_threshold()[0], "
            "gc.get_freeze_count() > 1000); launch.main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["running", "True", "50000", "True"]
