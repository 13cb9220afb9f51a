"""The center's events take their methods from ``generated_events``: they are the classes
``dataclass(frozen=True, slots=True)`` makes, and the module is up to date."""
from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys

import pytest
from dist_protocol.messages import Release
from dist_protocol.records import DECLARATIONS, METHOD_NAMES, builder
from dist_protocol.records_source import differences

from dist_center import events


def test_the_events_are_the_classes_dataclass_makes():
    assert differences("dist_center.events") == []


def test_every_event_has_its_generated_methods():
    classes = [cls for cls in DECLARATIONS if cls.__module__ == events.__name__]
    assert len(classes) == 14
    for cls in classes:
        for name in METHOD_NAMES:
            assert getattr(cls, name).__code__.co_filename.endswith("generated_events.py")


def test_an_empty_frozenset_default_is_generated_too():
    assert events.ClientConnected("c").features == frozenset()
    assert type(events.Recovering().workers) is frozenset and not events.Recovering().workers
    assert events.Recovering.__init__.__code__.co_filename.endswith("generated_events.py")


def test_the_generated_module_is_up_to_date():
    result = subprocess.run([sys.executable, "-m", "dist_protocol.records_source",
                             "dist_center.events", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(30)
def test_the_event_of_a_peers_message_is_built_as_its_class_makes_it():
    # (the server makes one a message with the builder, which changes its class once)
    message = Release(keys=["k"])
    for cls, who in ((events.ClientSent, "client-1"), (events.WorkerSent, "tcp://w:1")):
        build = builder(cls)
        assert build is not cls
        made, built = cls(who, message), build(who, message)
        assert type(built) is cls and built == made and repr(built) == repr(made)
        assert build(who, message, "sid-1") == cls(who, message, stimulus_id="sid-1")
        assert pickle.loads(pickle.dumps(built)) == made
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.message = message  # type: ignore[misc]
