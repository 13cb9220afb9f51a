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
