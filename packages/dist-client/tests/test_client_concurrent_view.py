"""``Executor.get_executor(**options)``: which options a view takes."""
from types import SimpleNamespace

import pytest

from dist_client.concurrent_view import ConcurrentView


def test_a_pools_initializer_is_refused_saying_what_does_its_work():
    with pytest.raises(TypeError, match=r"'initializer', 'initargs'.*register_plugin"):
        ConcurrentView(SimpleNamespace(core=None), {"initializer": print, "initargs": (1,)})


def test_an_unknown_option_is_refused_naming_the_options_there_are():
    with pytest.raises(TypeError, match=r"'colour'.*workers, resources, priority"):
        ConcurrentView(SimpleNamespace(core=None), {"colour": "blue"})


def test_the_task_options_are_taken():
    view = ConcurrentView(SimpleNamespace(core=None), {
        "workers": ["w"], "resources": {"GPU": 1}, "priority": 2, "retries": 1,
        "allow_other_workers": True, "key": "k", "pure": True}, max_workers=3)
    assert view.max_workers == 3
