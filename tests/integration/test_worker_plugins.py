"""Worker plugins, as dask's ``Client.register_plugin``: set up on the workers present and
on those that join later or come back from a restart, torn down on unregister and close."""
from __future__ import annotations

import os
import threading

import pytest
from dist_client import (ClusterError, NannyPlugin, PluginUnpicklingError, SchedulerPlugin,
                         WorkerPlugin, get_worker)

from .conftest import wait_until

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 30


class RecordingPlugin:
    """Puts ``value`` in each worker's ``data`` on setup; writes a file on teardown."""

    def __init__(self, value, folder, name="recording"):
        self.value = value
        self.folder = str(folder)
        self.name = name

    def setup(self, worker):
        worker.data[self.name] = (self.value, threading.current_thread().name, os.getpid())

    def teardown(self, worker):
        path = os.path.join(self.folder, f"teardown-{self.name}-{worker.id}")
        with open(path, "w") as f:
            f.write(str(self.value))


class FailingPlugin:
    name = "failing"

    def setup(self, worker):
        raise ValueError(f"no setup on {worker.address}")


def _refuse_to_load():
    raise ImportError("this plugin's module is not on the worker")


class UnloadablePlugin:
    name = "unloadable"

    def setup(self, worker):
        pass

    def __reduce__(self):
        return _refuse_to_load, ()


def set_up(name):
    return get_worker().data.get(name)


def teardowns(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("teardown-"))


@pytest.mark.cluster(n_workers=2)
def test_setup_runs_on_every_worker_on_a_thread_and_on_workers_joining_later(cluster):
    e = cluster.executor()
    assert e.register_plugin(RecordingPlugin(1, "/nonexistent")) == {
        address: "OK" for address in e.nthreads()}
    seen = e.run(set_up, "recording")
    assert {value for value, _, _ in seen.values()} == {1} and len(seen) == 2
    assert all(thread != "MainThread" for _, thread, _ in seen.values())  # not the loop's
    late = cluster.add_worker()
    cluster.wait_for_workers(e, 3)
    # Set up before its first task: this task finds it done.
    assert e.submit(set_up, "recording", workers=[late.name],
                    pure=False).result(RESULT_TIMEOUT)[0] == 1


@pytest.mark.cluster(n_workers=1)
def test_a_name_is_replaced_unless_idempotent_and_teardown_runs_on_unregister(cluster,
                                                                              tmp_path):
    e = cluster.executor()
    e.register_worker_plugin(RecordingPlugin("first", tmp_path))  # dask's older name
    assert e.register_plugin(RecordingPlugin("ignored", tmp_path), idempotent=True) == {}
    assert {v[0] for v in e.run(set_up, "recording").values()} == {"first"}
    e.register_plugin(RecordingPlugin("second", tmp_path))  # the first is torn down
    assert {v[0] for v in e.run(set_up, "recording").values()} == {"second"}
    assert len(teardowns(tmp_path)) == 1
    e.register_plugin(RecordingPlugin("other", tmp_path, name="own"), name="renamed")

    assert list(e.unregister_worker_plugin("recording").values()) == ["OK"]

    [path] = teardowns(tmp_path)
    assert open(tmp_path / path).read() == "second"
    late = cluster.add_worker()
    cluster.wait_for_workers(e, 2)
    assert e.submit(set_up, "recording", workers=[late.name], pure=False).result(
        RESULT_TIMEOUT) is None  # unregistered: not set up on workers joining after
    assert e.submit(set_up, "own", workers=[late.name], pure=False).result(
        RESULT_TIMEOUT)[0] == "other"
    assert e.unregister_worker_plugin("renamed")  # by the name it was registered under
    with pytest.raises(ValueError, match="no worker plugin named 'recording'"):
        e.unregister_worker_plugin("recording")


@pytest.mark.cluster(n_workers=1)
def test_a_setup_error_comes_back_and_a_worker_joining_later_logs_it_and_goes_on(cluster):
    e = cluster.executor()
    with pytest.raises(ValueError, match="no setup on"):
        e.register_plugin(FailingPlugin())
    late = cluster.add_worker()
    cluster.wait_for_workers(e, 2)
    assert e.submit(os.getpid, workers=[late.name], pure=False).result(RESULT_TIMEOUT)
    wait_until(lambda: "failing failed to set up" in late.output(), RESULT_TIMEOUT,
               "the worker's log of the failed setup")


@pytest.mark.cluster(n_workers=1)
def test_a_plugin_that_does_not_unpickle_on_workers_is_not_kept(cluster):
    e = cluster.executor()
    pids = e.run(os.getpid)
    with pytest.raises(PluginUnpicklingError, match="'unloadable' could not be unpickled"):
        e.register_plugin(UnloadablePlugin())
    assert e.run(os.getpid) == pids  # the worker goes on
    with pytest.raises(ValueError, match="no worker plugin named"):
        e.unregister_worker_plugin("unloadable")  # not kept for workers joining later


@pytest.mark.cluster(n_workers=1, nanny=True)
def test_plugins_are_torn_down_and_set_up_again_in_restarted_worker_processes(cluster,
                                                                               tmp_path):
    e = cluster.executor()
    e.register_plugin(RecordingPlugin("kept", tmp_path))
    pids = e.run(os.getpid)
    e.restart(timeout=60)
    assert len(teardowns(tmp_path)) == 1  # the old process tore its plugin down, as dask's
    seen = e.run(set_up, "recording")
    assert e.run(os.getpid) != pids
    assert [(value, pid) for value, _, pid in seen.values()] == [
        ("kept", pid) for pid in e.run(os.getpid).values()]


@pytest.mark.cluster(n_workers=1)
def test_teardown_runs_when_a_worker_closes(cluster, tmp_path):
    e = cluster.executor()
    e.register_plugin(RecordingPlugin("closing", tmp_path))
    [worker] = cluster.workers
    worker.terminate()
    assert worker.wait(RESULT_TIMEOUT) is not None
    assert len(teardowns(tmp_path)) == 1


def test_a_center_without_the_feature_raises_cluster_error(make_cluster):
    from dist_protocol.features import FEATURES
    older = {"DIST_PROTOCOL_FEATURES": ",".join(f for f in FEATURES if f != "worker-plugins")}
    cluster = make_cluster(n_workers=1, env=older)
    with cluster.executor() as e:
        with pytest.raises(ClusterError, match="'worker-plugins'"):
            e.register_plugin(RecordingPlugin(1, "/nonexistent"))
        with pytest.raises(ClusterError, match="'worker-plugins'"):
            e.unregister_worker_plugin("recording")


class FromDasksBase(WorkerPlugin):
    """Written as for dask: the base class's idempotent and teardown are used."""

    idempotent = True
    name = "from-base"

    def __init__(self, value):
        self.value = value

    def setup(self, worker):
        worker.data["from-base"] = self.value


def test_dasks_plugin_base_classes_register_or_say_why_not(cluster):
    e = cluster.executor()
    assert set(e.register_plugin(FromDasksBase(1)).values()) == {"OK"}
    assert e.register_plugin(FromDasksBase(2)) == {}  # idempotent, from the class
    assert set(e.run(set_up, "from-base").values()) == {1}
    assert set(e.register_plugin(FromDasksBase(3), idempotent=False).values()) == {"OK"}
    assert set(e.run(set_up, "from-base").values()) == {3}
    assert set(e.unregister_worker_plugin("from-base").values()) == {"OK"}  # base teardown

    class Counting(SchedulerPlugin):
        def transition(self, key, start, finish, *args, stimulus_id, **kwargs):
            pass

    class Env(NannyPlugin):
        restart = True

    with pytest.raises(NotImplementedError, match="center"):
        e.register_plugin(Counting())
    with pytest.raises(NotImplementedError, match="nanny"):
        e.register_plugin(Env())
