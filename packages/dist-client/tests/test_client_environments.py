"""The client's view of its cluster's Python and package versions, and the checks on it."""
from __future__ import annotations

import pytest

from dist_client import EnvironmentMismatch
from dist_client.environments import (REFRESH_AHEAD_SECONDS, REFRESH_SECONDS, ClusterEnvironments,
                                      environment_from)
from dist_protocol.messages import Environment

pytestmark = pytest.mark.timeout(30)

PACKAGES = {"dist-client": "0.1.0", "dist-protocol": "0.1.0", "cloudpickle": "3.1.3",
            "msgpack": "1.2.4"}


def env(python: str, implementation: str = "cpython", **packages: str) -> Environment:
    merged = dict(PACKAGES)
    merged.update({k.replace("_", "-"): v for k, v in packages.items()})
    return Environment(implementation=implementation, python=python, packages=merged)


def worker(address: str, environment: Environment | None, name: str | None = None) -> dict:
    row = {"address": address, "name": name or address, "nthreads": 1}
    if environment is not None:
        row["environment"] = {"implementation": environment.implementation,
                              "python": environment.python, "packages": environment.packages}
    return row


def cluster(*workers: dict, client: str = "3.11.7") -> ClusterEnvironments:
    envs = ClusterEnvironments(env(client))
    envs.center = env("3.11.7")
    envs.update(list(workers), now=100.0)
    return envs


def test_every_worker_on_another_minor_version_is_warned_of_once_naming_both():
    envs = cluster(worker("w1", env("3.11.7")), worker("w2", env("3.11.2")), client="3.12.1")
    [text] = envs.new_differences()
    assert "CPython 3.12.1" in text and "w1 runs CPython 3.11.7" in text
    assert "w2 runs CPython 3.11.2" in text and "none in this cluster" in text
    assert "importable there by name" in text  # what still runs there
    assert envs.new_differences() == []  # once
    envs.update([worker("w3", env("3.10.4"))], now=101.0)
    [text] = envs.new_differences()  # another Python: told of too
    assert "w3 runs CPython 3.10.4" in text


def test_patch_releases_and_silent_workers_are_no_reason_to_warn():
    assert cluster(worker("w1", env("3.11.2")), client="3.11.7").new_differences() == []
    # an older worker says nothing; with no workers yet, the worker checks each task
    assert cluster(worker("w1", None), client="3.12.1").new_differences() == []
    assert cluster(client="3.12.1").new_differences() == []


def test_another_implementation_is_another_python():
    envs = cluster(worker("w1", env("3.11.7", implementation="pypy")), client="3.11.7")
    [text] = envs.new_differences()
    assert "PyPy 3.11.7" in text


def test_a_mixed_cluster_refuses_pickled_code_at_submit_unless_it_is_pinned_to_our_python():
    envs = cluster(worker("w1", env("3.11.7"), name="old"), worker("w2", env("3.12.1"), "new"),
                   client="3.12.1")
    [text] = envs.new_differences()
    assert "workers=['w2']" in text  # where code pickled here runs
    with pytest.raises(EnvironmentMismatch) as refused:
        envs.check_submit(None, False)
    assert "w1 runs CPython 3.11.7" in str(refused.value)
    assert "workers=['w2']" in str(refused.value) and "nothing was sent" in str(refused.value)
    envs.check_submit(["w2"], False)
    envs.check_submit(["new"], False)  # by name
    with pytest.raises(EnvironmentMismatch):
        envs.check_submit(["w2"], True)  # may still land on w1
    with pytest.raises(EnvironmentMismatch):
        envs.check_submit(["w1", "w2"], False)


def test_scatter_targets_on_another_python_are_refused():
    envs = cluster(worker("w1", env("3.11.7")), worker("w2", env("3.12.1")), client="3.12.1")
    envs.check_targets(["w2"])
    with pytest.raises(EnvironmentMismatch, match="w1 runs CPython 3.11.7") as refused:
        envs.check_targets(["w2", "w1"])
    # It says how to scatter there anyway, as submit's refusal does.
    assert "scatter to the workers on CPython 3.12 with workers=['w2']" in str(refused.value)


def test_package_differences_are_reported_once_naming_package_and_versions():
    envs = cluster(worker("w1", env("3.11.7", cloudpickle="3.0.0")),
                   worker("w2", env("3.11.7", cloudpickle="3.0.0")))
    text = envs.new_package_differences()
    assert text is not None and "cloudpickle" in text
    assert "3.1.3 (client, center)" in text and "3.0.0 (w1, w2)" in text
    assert "msgpack" not in text
    assert envs.new_package_differences() is None  # once
    envs.update([worker("w1", env("3.11.7", msgpack="1.0.0"))], now=200.0)
    again = envs.new_package_differences()
    assert again is not None and "msgpack" in again and "cloudpickle" not in again


def test_versions_lists_every_process_and_mismatches_says_what_differs():
    envs = cluster(worker("w1", env("3.12.1", dist_protocol="0.2.0")), worker("w2", None))
    versions = envs.versions()
    assert versions["client"]["python"] == "3.11.7"
    assert versions["center"]["python"] == "3.11.7"
    assert versions["workers"]["w1"]["packages"]["dist-protocol"] == "0.2.0"
    assert versions["workers"]["w2"] is None
    problems = envs.mismatches()
    assert any("w1 runs CPython 3.12.1" in p for p in problems)
    assert any(p.startswith("dist-protocol:") and "w1 0.2.0" in p for p in problems)
    assert cluster(worker("w1", env("3.11.1"))).mismatches() == []


def test_the_view_of_the_workers_goes_stale_after_a_second():
    envs = cluster()
    assert not envs.stale(100.0 + REFRESH_SECONDS / 2)
    assert envs.stale(100.0 + REFRESH_SECONDS * 2)
    assert ClusterEnvironments().stale(0.0)


def test_an_aging_view_is_refreshed_in_the_background_before_a_submit_would_wait_for_it():
    envs = cluster()
    assert envs.refresh_due(100.0 + REFRESH_AHEAD_SECONDS / 2) is None
    assert envs.refresh_due(100.0 + (REFRESH_AHEAD_SECONDS + REFRESH_SECONDS) / 2) == "ahead"
    assert envs.refresh_due(100.0 + REFRESH_SECONDS * 2) == "wait"
    assert ClusterEnvironments().refresh_due(0.0) == "wait"  # never listed: nothing to go by


def test_malformed_environments_read_as_unknown():
    assert environment_from(None) is None
    assert environment_from({"python": 3}) is None
    assert environment_from({"implementation": "cpython", "python": "3.11.7",
                             "packages": {"x": 1, "y": "2"}}).packages == {"y": "2"}
