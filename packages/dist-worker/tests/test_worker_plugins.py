"""A worker's plugins: set up once per pickle and worker start, replaced by name (the older
torn down), and a failing one logged without stopping the others."""
import logging
import pickle

import pytest

from dist_protocol.messages import PluginSpec
from dist_protocol.serialize import Payload
from dist_protocol.task_context import WorkerInfo
from dist_protocol.task_context import PluginLoadError
from dist_worker.plugins import WorkerPlugins, load

pytestmark = pytest.mark.timeout(30)

EVENTS: list[tuple[str, str, str]] = []


class Recorder:
    def __init__(self, label, fail=False):
        self.label = label
        self.fail = fail

    def setup(self, worker):
        EVENTS.append(("setup", self.label, worker.id))
        if self.fail:
            raise ValueError("setup failed")

    def teardown(self, worker):
        EVENTS.append(("teardown", self.label, worker.id))


class AsyncRecorder:
    async def setup(self, worker):
        EVENTS.append(("async setup", "", worker.id))


def about(worker_id="w-1"):
    return WorkerInfo(address="tcp://w:1", name="w", id=worker_id, nthreads=1,
                      memory_limit=None, local_directory="/tmp")


def spec(name, plugin):
    return PluginSpec(name=name, content=Payload("pickle", [pickle.dumps(plugin)]))


@pytest.fixture(autouse=True)
def clear_events():
    EVENTS.clear()


def test_the_same_pickle_is_set_up_once_per_worker_start_and_a_new_one_replaces_it():
    plugins = WorkerPlugins()
    first = spec("p", Recorder("first"))
    assert plugins.add_kept([first], about()) == ["p"]
    assert plugins.add_kept([first], about()) == []  # registered again: left alone
    assert plugins.add_kept([first], about("w-2")) == ["p"]  # a restarted worker
    plugins.add_kept([spec("p", Recorder("second"))], about("w-2"))
    plugins.teardown_all(about("w-2"))

    assert EVENTS == [("setup", "first", "w-1"), ("teardown", "first", "w-2"),
                      ("setup", "first", "w-2"), ("teardown", "first", "w-2"),
                      ("setup", "second", "w-2"), ("teardown", "second", "w-2")]


def test_a_failing_or_unloadable_plugin_is_logged_and_the_others_are_set_up(caplog):
    plugins = WorkerPlugins()
    broken = PluginSpec(name="broken", content=Payload("pickle", [b"not a pickle"]))
    with caplog.at_level(logging.ERROR, logger="dist.worker"):
        done = plugins.add_kept([broken, spec("fails", Recorder("x", fail=True)),
                                 spec("async", AsyncRecorder())], about())
    assert done == ["async"]
    assert "broken failed to set up" in caplog.text and "could not be unpickled" in caplog.text
    assert "fails failed to set up: ValueError: setup failed" in caplog.text
    assert ("async setup", "", "w-1") in EVENTS
    assert sorted(plugins.names) == ["async", "fails"]  # kept, as dask's: teardown still runs


def test_remove_tears_down_and_load_names_the_plugin():
    plugins = WorkerPlugins()
    plugins.add_kept([spec("p", Recorder("only"))], about())
    assert plugins.remove("p", about()) and not plugins.remove("p", about())
    assert EVENTS[-1] == ("teardown", "only", "w-1")
    with pytest.raises(PluginLoadError, match="'q' could not be unpickled on the worker"):
        load("q", b"garbage", "tcp://w:1")
