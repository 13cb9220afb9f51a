"""CPython's own generic executor tests (``Lib/test/test_concurrent_futures.py``: ExecutorTest,
WaitTests, AsCompletedTests, ExecutorShutdownTest), unchanged, against ``get_executor()`` and
against the Executor itself, on real processes.

The suite is read from a local CPython install (it is not copied here); without one the test
is skipped and says so. The few tests left out are listed with the reason for each.
"""
from __future__ import annotations

import glob
import importlib.util
import io
import os
import sys
import unittest
from pathlib import Path

import cloudpickle
import pytest
from dist_client import Executor

pytestmark = pytest.mark.timeout(300)
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 5}  # the suite's worker_count is 5
SUITES = ("ExecutorTest", "WaitTests", "AsCompletedTests", "ExecutorShutdownTest")

# Tests that start a new interpreter running ``from concurrent.futures import <type name>``:
# they cannot name our executor; test_executor_contract.py runs the same scenarios.
SUBPROCESS_TESTS = {
    "test_interpreter_shutdown": "imports the executor type by name in a subprocess",
    "test_submit_after_interpreter_shutdown": "imports the executor type by name in a subprocess",
    "test_hang_gh83386": "imports the executor type by name in a subprocess",
    "test_max_workers_negative": "dist has no max_workers: the cluster's threads are the pool",
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


def _cpython_suite_path() -> Path | None:
    """The single-file suite (3.6-3.11); 3.12 made it a package written for its own helpers."""
    candidates = [Path(p) / "test" / "test_concurrent_futures.py" for p in sys.path if p]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for pattern in (f"{pyenv}/versions/3.1[01]*/lib/python3.*/test/",
                    "/usr/lib/python3.1[01]/test/", "/usr/local/lib/python3.1[01]/test/"):
        candidates += [Path(d) / "test_concurrent_futures.py" for d in sorted(glob.glob(pattern),
                                                                              reverse=True)]
    return next((p for p in candidates if p.is_file()), None)


@pytest.fixture(scope="module")
def cpython_suite():
    path = _cpython_suite_path()
    if path is None:
        pytest.skip("no CPython 3.10/3.11 Lib/test/test_concurrent_futures.py installed here")
    pytest.importorskip("test.support.threading_helper")
    name = "cpython_test_concurrent_futures"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)  # workers cannot import it
    yield module
    sys.modules.pop(name, None)


def _run(suite_module, factory, skip: dict[str, str]) -> unittest.TestResult:
    class Mixin(suite_module.ExecutorMixin):
        executor_type = staticmethod(factory)
        worker_count = 5

    tests = unittest.TestSuite()
    for suite in SUITES:
        case = type(f"Dist{suite}", (Mixin, getattr(suite_module, suite),
                                     suite_module.BaseTestCase), {})
        for test in unittest.TestLoader().loadTestsFromTestCase(case):
            if test._testMethodName not in skip:
                tests.addTest(test)
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(tests)
    print(f"{result.testsRun} CPython executor tests run, {len(skip)} left out")
    return result


def _problems(result: unittest.TestResult) -> str:
    return "\n\n".join(f"{test.id()}:\n{text}" for test, text in
                       [*result.failures, *result.errors])


def test_the_concurrent_futures_view_passes_cpythons_executor_tests(module_cluster,
                                                                    cpython_suite):
    with Executor(module_cluster.address) as e:
        result = _run(cpython_suite, lambda max_workers=None, **_: e.get_executor(),
                      SUBPROCESS_TESTS)
    assert result.testsRun >= 25
    assert result.wasSuccessful(), _problems(result)


def test_the_executor_passes_cpythons_executor_tests_but_its_documented_differences(
        module_cluster, cpython_suite):
    result = _run(cpython_suite, lambda max_workers=None, **_: Executor(module_cluster.address),
                  {**SUBPROCESS_TESTS, **EXECUTOR_DIFFERENCES})
    assert result.testsRun >= 20
    assert result.wasSuccessful(), _problems(result)
