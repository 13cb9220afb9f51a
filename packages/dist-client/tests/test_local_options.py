"""The keywords of dask's ``Client()``/``LocalCluster()`` that shape the local cluster, read
without starting anything."""
from __future__ import annotations

import logging

import pytest
from dist_client import Executor
from dist_client.arguments import local_cluster_shape
from dist_client.local import LocalCluster
from dist_client.local_options import (DEFAULT_DASHBOARD_PORT, LocalOptions, dashboard_port,
                                       level_name, log_level, workers_and_threads)

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("processes, n_workers, threads, cores, expected", [
    (False, None, None, 8, (1, 8)),  # dask: one worker, a thread per core
    (False, None, 2, 8, (1, 2)),
    (False, 3, None, 8, (3, 3)),  # cores shared out, rounded up
    (False, 0, None, 8, (0, 8)),
    (True, None, None, 8, (4, 2)),  # as before: up to 4 worker processes
    (True, None, None, 2, (2, 1)),
    (True, None, 2, 8, (4, 2)),
    (True, 3, None, 8, (3, 2)),
    (True, 2, 5, 8, (2, 5)),
])
def test_workers_and_threads_follow_dask_defaults(processes, n_workers, threads, cores,
                                                  expected):
    assert workers_and_threads(processes, n_workers, threads, cores) == expected


@pytest.mark.parametrize("address, port", [
    (None, None), (False, None), (True, DEFAULT_DASHBOARD_PORT), (":0", 0), (":8790", 8790),
    ("127.0.0.1:8790", 8790), ("localhost:0", 0), ("http://127.0.0.1:8790", 8790), (0, 0),
    (8790, 8790),
])
def test_dashboard_address(address, port):
    assert dashboard_port(address, "127.0.0.1") == port


@pytest.mark.parametrize("address, error, match", [
    ("10.1.2.3:8787", ValueError, "own interface"),
    ("8787", ValueError, "no port"),
    (":http", ValueError, "not a port number"),
    (":70000", ValueError, "between 0 and 65535"),
    (-1, ValueError, "between 0 and 65535"),
    (["127.0.0.1", 8787], TypeError, "dashboard_address must be"),
])
def test_bad_dashboard_addresses_are_refused(address, error, match):
    with pytest.raises(error, match=match):
        dashboard_port(address, "127.0.0.1")


def test_dashboard_host_on_all_interfaces():
    assert dashboard_port("0.0.0.0:9000", "0.0.0.0") == 9000


@pytest.mark.parametrize("silence_logs, level", [
    (None, None), (False, None), (True, logging.WARNING), (logging.ERROR, logging.ERROR),
    ("error", logging.ERROR), ("INFO", logging.INFO), (5, 5),
])
def test_silence_logs(silence_logs, level):
    assert log_level(silence_logs) == level


def test_silence_logs_refuses_what_is_no_level():
    with pytest.raises(ValueError, match="silence_logs"):
        log_level("loud")


def test_level_names_for_the_command_line():
    assert [level_name(n) for n in (logging.DEBUG, logging.INFO, 25, logging.WARNING,
                                    logging.ERROR, logging.CRITICAL, 100)] == \
        ["debug", "info", "info", "warning", "error", "critical", "critical"]


def test_only_the_keywords_given_reach_the_cluster():
    assert LocalOptions().given() == {}
    assert LocalOptions(n_workers=None, silence_logs=None).given() == {}
    # None says something for the dashboard: none.
    assert LocalOptions(dashboard_address=None).given() == {"dashboard_address": None}
    assert local_cluster_shape(None, LocalOptions(n_workers=2.0, processes=False)) == {
        "n_workers": 2, "processes": False}


@pytest.mark.parametrize("keyword", ["processes", "dashboard_address", "silence_logs",
                                     "local_directory"])
def test_local_cluster_keywords_beside_an_address_are_refused(keyword):
    value = {"processes": False, "dashboard_address": ":0", "silence_logs": logging.ERROR,
             "local_directory": "/tmp"}[keyword]
    with pytest.raises(TypeError, match=f"{keyword} shape the local cluster"):
        Executor("127.0.0.1:1", **{keyword: value})


def test_processes_must_be_a_boolean():
    with pytest.raises(TypeError, match="processes must be True or False"):
        local_cluster_shape(None, LocalOptions(processes="no"))


@pytest.mark.parametrize("make", [Executor, LocalCluster])
def test_dask_keywords_without_meaning_here_are_refused_with_the_reason(make):
    with pytest.raises(TypeError, match="worker_class=: dist's local cluster runs dist"):
        make(worker_class=object)
    with pytest.raises(TypeError, match="protocol=: .*TCP"):
        make(protocol="inproc://")
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_option'"):
        make(no_such_option=1)


def test_async_executor_refuses_them_too():
    from dist_client import AsyncExecutor
    with pytest.raises(TypeError, match="loop=: the executor runs its own I/O loop"):
        AsyncExecutor(loop=None)
    with pytest.raises(TypeError, match="processes shape the local cluster"):
        AsyncExecutor("127.0.0.1:1", processes=False)


def test_local_cluster_is_importable_from_the_package_as_from_dask_distributed():
    import dist_client

    assert dist_client.LocalCluster is LocalCluster and "LocalCluster" in dist_client.__all__
    with pytest.raises(AttributeError, match="no attribute 'LocalCuster'"):
        dist_client.LocalCuster  # noqa: B018
