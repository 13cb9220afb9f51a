"""What the center imports to start serving stays what serving needs: the modules below are
imported only with a state directory or at a dashboard page's first request, and these tests
fail when an import at module level brings one back into every start."""
from __future__ import annotations

import subprocess
import sys

# ``dcenter``'s imports until it serves, its dashboard's included.
STARTUP = "import dist_center.cli, dist_center.server, dist_center.dashboard"
NOT_AT_STARTUP = ("sqlite3", "pathlib", "ipaddress", "importlib.resources", "tempfile", "html",
                  "urllib.parse", "cloudpickle", "platform", "lz4", "zstandard")


def imported(statement: str, names: tuple[str, ...]) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(n for n in sys.argv[1:] if n in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def test_starting_the_center_imports_nothing_only_a_state_directory_or_a_page_needs():
    assert imported(STARTUP, NOT_AT_STARTUP) == []


def test_the_lazy_imports_happen_where_they_are_used():
    statement = (STARTUP + "; from dist_center.store import StateStore; "
                 "import tempfile; StateStore(tempfile.mkdtemp()).close()")
    assert imported(statement, ("sqlite3",)) == ["sqlite3"]


def test_the_center_serves_with_the_collector_on_its_start_up_frozen():
    """``dcenter`` turns the collector off while it imports its modules; by the time it
    serves, the collector is on again with the server's thresholds, and the objects of the
    start-up are frozen out of its passes (the event loop is replaced by a report of that)."""
    code = ("import gc, os, sys; os.environ['PYTHONMALLOC'] = 'malloc'; "
            "import dist_protocol.comm as comm; from dist_center import launch; "
            "comm.run = lambda main: (main.close(), print('serving', gc.isenabled(), "
            "gc.get_threshold()[0], gc.get_freeze_count() > 1000)); "
            "sys.argv = ['dcenter', '--host', '127.0.0.1', '--port', '0', '--no-dashboard']; "
            "launch.main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.splitlines()[-1].split() == ["serving", "True", "50000", "True"]
