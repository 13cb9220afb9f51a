"""Benchmarks run inside benchmarks/.venv when it exists: the peers are installed only there."""
from __future__ import annotations

import os
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv"


def reexec_in_venv(script: str) -> None:
    """Start ``script`` again under the benchmark venv's interpreter, once, keeping its
    arguments; nothing happens when there is no venv or this already is it."""
    python = VENV / "bin" / "python"
    if (python.exists() and Path(sys.prefix).resolve() != VENV.resolve()
            and not os.environ.get("DIST_BENCH_NO_REEXEC")):
        os.environ["DIST_BENCH_NO_REEXEC"] = "1"
        os.execv(str(python), [str(python), script, *sys.argv[1:]])
    compile_dist_packages()


def compile_dist_packages() -> None:
    """Byte-compile dist's packages ahead of the runs, as ``pip install`` does for a regular
    install. Editable installs (this repository's) compile nothing, and under
    ``PYTHONDONTWRITEBYTECODE`` every process the benchmark starts would compile each module
    again: about half of a worker's start-up CPU, a cost no installed user pays."""
    import compileall
    import importlib.util

    for package in ("dist_protocol", "dist_center", "dist_worker", "dist_client"):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(location, quiet=1)
