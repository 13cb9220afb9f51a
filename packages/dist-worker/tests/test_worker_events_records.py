"""The worker's events and instructions take their methods from ``generated_events``: they
are the classes ``dataclass(frozen=True, slots=True)`` makes, and the module is up to date."""
from __future__ import annotations

import subprocess
import sys

from dist_protocol.records import DECLARATIONS, METHOD_NAMES
from dist_protocol.records_source import differences

from dist_worker import events


def test_the_events_are_the_classes_dataclass_makes():
    assert differences("dist_worker.events") == []


def test_every_event_and_instruction_has_its_generated_methods():
    classes = [cls for cls in DECLARATIONS if cls.__module__ == events.__name__]
    assert len(classes) == 30
    for cls in classes:
        for name in METHOD_NAMES:
            assert getattr(cls, name).__code__.co_filename.endswith("generated_events.py")


def test_the_generated_module_is_up_to_date():
    result = subprocess.run([sys.executable, "-m", "dist_protocol.records_source",
                             "dist_worker.events", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
