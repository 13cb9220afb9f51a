"""A worker's threads importing what their tasks need, with real processes: a task never runs
on a package another thread is still importing (as dask.array, whose numpy implementations
are registered at the end of its ``__init__``)."""
from __future__ import annotations

import os
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(90)
TOP = "slow_import_top"


@pytest.fixture
def slow_package(tmp_path, monkeypatch):
    """``slow_import_top.package``: its ``__init__`` imports ``core``, pauses for
    ``SLOW_IMPORT_PAUSE`` seconds (on the worker only), then imports ``backends``, which
    registers what ``core.use`` needs. Returns the environment that lets a worker import it."""
    (tmp_path / TOP).mkdir()
    (tmp_path / TOP / "__init__.py").write_text("")
    package = tmp_path / TOP / "package"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        import os
        import time

        from . import core

        time.sleep(float(os.environ.get("SLOW_IMPORT_PAUSE", "0")))
        from . import backends
    """))
    (package / "core.py").write_text(textwrap.dedent("""
        IMPLEMENTATIONS = {}

        def use(x):
            return IMPLEMENTATIONS["double"](x)
    """))
    (package / "chunk.py").write_text(textwrap.dedent("""
        from .core import use

        def use_twice(x):
            return use(use(x))
    """))
    (package / "backends.py").write_text(textwrap.dedent("""
        from .core import IMPLEMENTATIONS

        IMPLEMENTATIONS["double"] = lambda x: 2 * x
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                       os.environ.get("PYTHONPATH")])),
           "SLOW_IMPORT_PAUSE": "1.0"}
    for name in [name for name in sys.modules if name.startswith(TOP)]:
        del sys.modules[name]


def test_two_threads_first_tasks_from_one_package_both_see_it_whole(make_cluster,
                                                                    slow_package):
    from slow_import_top.package import chunk, core

    cluster = make_cluster(n_workers=1, nthreads=2, env=slow_package)
    with cluster.executor() as e:
        futures = [e.submit(chunk.use_twice, 1), e.submit(core.use, 2)]
        assert e.gather(futures) == [4, 4]
