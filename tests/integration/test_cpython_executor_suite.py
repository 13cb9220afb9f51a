"""CPython's own generic executor tests, unchanged, against real processes: ExecutorTest,
WaitTests, AsCompletedTests, ExecutorShutdownTest and FutureTests of
``Lib/test/test_concurrent_futures`` -- the single file of CPython 3.10/3.11 and the package of
3.12 and later -- each against ``Executor(address).get_executor()`` and against
``Executor(address)`` itself, a new one for every test as a user's code makes them.

The suites are read from local CPython installs (they are not copied here); without one the
test is skipped and says so. The few tests left out are listed with the reason for each.
"""
from __future__ import annotations

import glob
import importlib
import importlib.util
import io
import logging
import os
import sys
import unittest
from pathlib import Path
from types import ModuleType

import cloudpickle
import pytest
from dist_client import Executor

pytestmark = pytest.mark.timeout(400)
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 5}  # the suite's worker_count is 5
# (class, module of the package layout it lives in)
SUITES = (("ExecutorTest", "executor"), ("WaitTests", "test_wait"),
          ("AsCompletedTests", "test_as_completed"), ("ExecutorShutdownTest", "test_shutdown"))

# Tests that start a new interpreter running ``from concurrent.futures import <type name>``:
# they cannot name our executor; test_executor_contract.py runs the same scenarios.
SUBPROCESS_TESTS = {
    "test_interpreter_shutdown": "imports the executor type by name in a subprocess",
    "test_submit_after_interpreter_shutdown": "imports the executor type by name in a subprocess",
    "test_hang_gh83386": "imports the executor type by name in a subprocess",
}
NO_MAX_WORKERS = {
    "test_max_workers_negative": "a factory that takes no max_workers (only get_executor does)",
}
# Where the Executor differs from concurrent.futures on purpose (README, "concurrent.futures").
EXECUTOR_DIFFERENCES = {
    "test_map": "Executor.map returns futures, as dask's does (get_executor().map yields)",
    "test_map_exception": "Executor.map returns futures, as dask's does",
    "test_map_timeout": "Executor.map returns futures, as dask's does",
    "test_free_reference": "Executor.map returns futures, which hold their results",
    "test_cancel_futures": "equal pure calls share one key: 50 submits of sleep(0.1) are one "
                           "task (get_executor() runs every call)",
}


def _installed_pythons(pattern: str) -> list[str]:
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = []
    for root in (f"{pyenv}/versions/*/lib", "/usr/lib", "/usr/local/lib"):
        found += sorted(glob.glob(f"{root}/{pattern}"), reverse=True)
    return found


def _single_file_suite() -> Path | None:
    """The single-file suite of CPython 3.10/3.11: this Python's own, if it is one of them,
    as its ``test.support`` is the one the suite was written with."""
    here = f"python{sys.version_info[0]}.{sys.version_info[1]}/test"
    for directory in sorted(_installed_pythons("python3.1[01]/test"),
                            key=lambda found: not found.endswith(here)):
        path = Path(directory) / "test_concurrent_futures.py"
        if path.is_file():
            return path
    return None


def _package_suite() -> Path | None:
    """The package the suite became in CPython 3.12: this Python's own, if it has one, as its
    ``test.support`` is the one the suite was written with."""
    here = f"python{sys.version_info[0]}.{sys.version_info[1]}/test/test_concurrent_futures"
    for directory in sorted(_installed_pythons("python3.1[2-9]/test/test_concurrent_futures"),
                            key=lambda found: not found.endswith(here)):
        if (Path(directory) / "executor.py").is_file():
            return Path(directory)
    return None


def _load(name: str, path: Path, package: bool = False) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path / "__init__.py" if package else path,
        submodule_search_locations=[str(path)] if package else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Suite:
    """One CPython version's test classes, by name, and its ``ExecutorMixin``/``BaseTestCase``."""

    def __init__(self, classes: dict[str, type], mixin: type, base: type, modules: list):
        self.classes, self.mixin, self.base, self.modules = classes, mixin, base, modules


@pytest.fixture(scope="module", params=["3.10-3.11 file", "3.12+ package"])
def cpython_suite(request):
    pytest.importorskip("test.support.threading_helper")
    import test.support
    if request.param == "3.10-3.11 file":
        path = _single_file_suite()
        if path is None:
            pytest.skip("no CPython 3.10/3.11 Lib/test/test_concurrent_futures.py installed here")
        module = _load("cpython_cf_file", path)
        suite = Suite({name: getattr(module, name) for name, _ in SUITES}, module.ExecutorMixin,
                      module.BaseTestCase, [module])
        future_tests = module.FutureTests
    else:
        path = _package_suite()
        if path is None:
            pytest.skip("no CPython 3.12+ Lib/test/test_concurrent_futures/ installed here")
        if not hasattr(test.support, "Py_GIL_DISABLED"):  # newer than this Python's support
            test.support.Py_GIL_DISABLED = False
        from test.support import threading_helper
        if not hasattr(threading_helper, "requires_working_threading"):  # 3.11's, not 3.10's
            threading_helper.requires_working_threading = lambda *, module=False: (
                None if module else (lambda test: test))
        _load("cpython_cf_package", path, package=True)
        modules = {part: importlib.import_module(f"cpython_cf_package.{part}")
                   for part in ("util", "executor", "test_wait", "test_as_completed",
                                "test_shutdown", "test_future")}
        suite = Suite({name: getattr(modules[part], name) for name, part in SUITES},
                      modules["util"].ExecutorMixin, modules["util"].BaseTestCase,
                      list(modules.values()))
        future_tests = modules["test_future"].FutureTests
    suite.classes["FutureTests"] = future_tests
    for module in suite.modules:
        cloudpickle.register_pickle_by_value(module)  # workers cannot import it
    yield suite
    for module in suite.modules:
        cloudpickle.unregister_pickle_by_value(module)
    for name in list(sys.modules):
        if name.startswith(("cpython_cf_file", "cpython_cf_package")):
            del sys.modules[name]


def _run(suite: Suite, factory, skip: dict[str, str]) -> unittest.TestResult:
    class Mixin(suite.mixin):
        executor_type = staticmethod(factory)
        worker_count = 5

    tests = unittest.TestSuite()
    for name, case in suite.classes.items():
        if name != "FutureTests":  # the others are mixins, made test cases here
            case = type(f"Dist{name}", (Mixin, case, suite.base), {})
        for test in unittest.TestLoader().loadTestsFromTestCase(case):
            if test._testMethodName not in skip:
                tests.addTest(test)
    # FutureTests read what the standard logger prints to stderr: pytest's log capture would
    # take it first.
    root = logging.getLogger()
    handlers, root.handlers = root.handlers, []
    try:
        result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(tests)
    finally:
        root.handlers = handlers
    print(f"{result.testsRun} CPython executor tests run, {len(skip)} left out, "
          f"{len(result.skipped)} skipped by the suite itself")
    for test, reason in result.skipped:
        print(f"  skipped {test.id()}: {reason}")
    return result


def _problems(result: unittest.TestResult) -> str:
    return "\n\n".join(f"{test.id()}:\n{text}" for test, text in
                       [*result.failures, *result.errors])


def test_the_concurrent_futures_view_passes_cpythons_executor_tests(module_cluster,
                                                                    cpython_suite):
    # A new Executor for each test, which nothing holds but its view: the view keeps it open;
    # the suite's max_workers (5, or 0 and -1 that must be refused) goes to get_executor.
    result = _run(cpython_suite,
                  lambda **options: Executor(module_cluster.address).get_executor(**options),
                  SUBPROCESS_TESTS)
    assert result.testsRun >= 46
    assert result.wasSuccessful(), _problems(result)


def test_a_view_of_a_shared_executor_passes_them_too(module_cluster, cpython_suite):
    with Executor(module_cluster.address) as e:
        result = _run(cpython_suite, lambda max_workers=None, **_: e.get_executor(),
                      {**SUBPROCESS_TESTS, **NO_MAX_WORKERS})
        assert e.status == "running"  # a view's shutdown is the view's alone
    assert result.testsRun >= 45
    assert result.wasSuccessful(), _problems(result)


def test_the_executor_passes_cpythons_executor_tests_but_its_documented_differences(
        module_cluster, cpython_suite):
    result = _run(cpython_suite, lambda max_workers=None, **_: Executor(module_cluster.address),
                  {**SUBPROCESS_TESTS, **NO_MAX_WORKERS, **EXECUTOR_DIFFERENCES})
    assert result.testsRun >= 40
    assert result.wasSuccessful(), _problems(result)
