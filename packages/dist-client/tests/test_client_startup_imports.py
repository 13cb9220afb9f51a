"""``import dist_client`` stays what a client needs until its first result: what only workers
run (``upload_file``'s target folder), data fetched from workers, spilled or compressed data
is imported where it is used. These tests fail when an import at module level brings one
back into every client's start."""
from __future__ import annotations

import os
import subprocess
import sys

NOT_AT_IMPORT = ("tempfile", "shutil", "random", "lzma", "bz2", "lz4", "zstandard", "sqlite3",
                 "pathlib", "zict")


def imported(statement: str, names: tuple[str, ...], env: dict[str, str] | None = None
             ) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(n for n in sys.argv[1:] if n in sys.modules))"
    return subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                          check=True, env=env).stdout.split()


def test_importing_the_client_imports_nothing_only_later_work_needs():
    assert imported("import dist_client", NOT_AT_IMPORT) == []


def test_the_upload_folder_is_made_where_it_is_asked_for(tmp_path):
    statement = ("import dist_client; from dist_protocol.uploaded_files import upload_folder; "
                 f"assert upload_folder().startswith({str(tmp_path)!r})")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    assert imported(statement, ("tempfile",), env) == ["tempfile"]
