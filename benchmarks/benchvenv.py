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
