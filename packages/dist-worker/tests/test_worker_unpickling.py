"""Two tasks unpickled at once on two threads never see a package half imported."""
import sys
import textwrap
import threading
import types

import pytest

from dist_protocol.serialize import Payload, serialize
from dist_worker.events import Execute, ExecutionSucceeded
from dist_worker.execution import run_task
from dist_worker.unpickling import busy, unpickle

TOP = "half_imported_top"
PACKAGE = f"{TOP}.package"


@pytest.fixture
def slow_package(tmp_path, monkeypatch):
    """A package like dask.array in dask: its ``__init__`` imports ``core``, then pauses (until the
    test lets it go on) before importing ``backends``, which registers what ``core.use``
    needs; ``chunk`` is another of its modules."""
    # Nested as dask.array is in dask: Python holds back an import of ``top.package.core``
    # while ``top`` itself is being imported, not while ``top.package`` is.
    (tmp_path / TOP).mkdir()
    (tmp_path / TOP / "__init__.py").write_text("")
    root = tmp_path / TOP / "package"
    root.mkdir()
    (root / "__init__.py").write_text(textwrap.dedent("""
        import half_imported_signals as signals
        from . import core
        signals.core_imported.set()
        signals.may_finish.wait(30)
        from . import backends
    """))
    (root / "core.py").write_text(textwrap.dedent("""
        IMPLEMENTATIONS = {}

        def use(x):
            return IMPLEMENTATIONS["double"](x)
    """))
    (root / "chunk.py").write_text(textwrap.dedent("""
        from .core import use

        def use_twice(x):
            return use(use(x))
    """))
    (root / "backends.py").write_text(textwrap.dedent("""
        from .core import IMPLEMENTATIONS

        IMPLEMENTATIONS["double"] = lambda x: 2 * x
    """))
    signals = types.SimpleNamespace(core_imported=threading.Event(),
                                    may_finish=threading.Event())
    monkeypatch.setitem(sys.modules, "half_imported_signals", signals)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield signals
    signals.may_finish.set()
    for name in [name for name in sys.modules if name.startswith(TOP)]:
        del sys.modules[name]


def by_reference(module: str, name: str) -> Payload:
    """The pickle of ``module.name`` as any pickler writes a function it imports by name."""
    return Payload("pickle", [f"c{module}\n{name}\n.".encode()])


@pytest.mark.timeout(30)
def test_a_task_waits_for_the_package_another_tasks_unpickling_is_importing(slow_package):
    # The first task's function lives in another module of the package than the second's
    # (Python's own lock on a module being imported would hold the second back otherwise).
    functions = {"first": by_reference(f"{PACKAGE}.chunk", "use_twice"),
                 "second": by_reference(f"{PACKAGE}.core", "use")}
    outcomes = {}

    def run(key, x):
        outcomes[key] = run_task(Execute(key, functions[key], serialize([[x], {}]), {}))

    first = threading.Thread(target=run, args=("first", 1))
    first.start()
    assert slow_package.core_imported.wait(10)
    second = threading.Thread(target=run, args=("second", 2))
    second.start()
    # The package is half imported: the second task's unpickling must wait for the first's.
    second.join(0.5)
    assert second.is_alive(), f"the second task ran on a package half imported: {outcomes}"
    assert busy()  # the event loop runs no task itself meanwhile
    slow_package.may_finish.set()
    first.join(10)
    second.join(10)
    assert all(type(outcome) is ExecutionSucceeded for outcome in outcomes.values()), outcomes
    assert {key: outcome.value for key, outcome in outcomes.items()} == {"first": 4, "second": 4}
    assert not busy()


def test_values_that_are_not_pickles_are_loaded_as_they_are():
    assert unpickle(Payload("bytes", [b"raw"])) == b"raw"
    assert unpickle(serialize({"a": [1, 2]})) == {"a": [1, 2]}
