"""The catalogue's records with generated methods (``records``) are the classes
``dataclass(frozen=True, slots=True)`` makes, and the generated module is up to date."""
from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from typing import Any

import pytest

from dist_protocol import messages, records
from dist_protocol.records import frozen_record
from dist_protocol.records_source import describe, differences


def test_the_catalogues_records_are_the_classes_dataclass_makes():
    assert differences("dist_protocol.messages") == []


def test_every_record_of_the_catalogue_has_its_generated_methods():
    for cls in [*messages.RECORDS.values(), *messages.OPS.values()]:
        for name in records.METHOD_NAMES:
            code = getattr(cls, name).__code__
            assert code.co_filename.endswith("generated_messages.py"), (cls, name)


def test_the_generated_module_is_up_to_date():
    result = subprocess.run([sys.executable, "-m", "dist_protocol.records_source",
                             "dist_protocol.messages", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@dataclasses.dataclass(frozen=True, slots=True)
class Error:
    """``messages.Error`` with its fields the other way round."""

    message: str
    code: str


def test_describe_sees_what_tells_two_classes_apart():
    plain, reordered = describe(messages.Error), describe(Error)
    for key in ("signature", "repr", "state", "fields", "match_args", "slots"):
        assert plain[key] != reordered[key], key


def test_no_attribute_of_a_record_can_be_assigned_or_deleted():
    for obj in (messages.Authenticated(), messages.Heartbeat()):
        for name in ("x", *obj.__slots__):
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
                setattr(obj, name, 1)
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete"):
                delattr(obj, name)


def _declare(annotations: dict[str, str], namespace: dict[str, Any] | None = None) -> type:
    return type("Declared", (), {"__annotations__": annotations, "__module__": __name__,
                                 "__qualname__": "Declared", **(namespace or {})})


def test_a_class_that_changed_since_generation_gets_dataclass_methods():
    generated = {"Declared": (records.fingerprint(_declare({"a": "int"})), "Declared(a: 'int')",
                              lambda cls: pytest.fail("stale methods were used"))}
    changed = frozen_record(generated)(_declare({"a": "int", "b": "str"}))
    assert repr(changed(1, "x")) == "Declared(a=1, b='x')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed(1, "x").a = 2  # type: ignore[attr-defined]
    new_default = frozen_record(generated)(_declare({"a": "int"}, {"a": 3}))
    assert repr(new_default()) == "Declared(a=3)"


def test_defaults_generated_code_cannot_hold_leave_the_class_to_dataclass():
    assert records.fingerprint(_declare({"a": "tuple[int, ...]"}, {"a": (1, 2)})) is None
    assert records.fingerprint(_declare({"a": "float"}, {"a": float("nan")})) is None
    factory = dataclasses.field(default_factory=lambda: [1])
    assert records.fingerprint(_declare({"a": "list[int]"}, {"a": factory})) is None
    assert records.fingerprint(_declare({"a": "int"}, {"a": 1})) == (("a", "int", "1"),)


def test_a_records_builder_makes_the_instance_its_class_makes():
    # Each record built from placeholders both ways: equal, of the class itself, frozen, and
    # pickled alike. The records of two fields or more have a builder of their own.
    own = 0
    for cls in [*messages.RECORDS.values(), *messages.OPS.values()]:
        build = records.builder(cls)
        own += build is not cls
        fields = dataclasses.fields(cls)
        assert (build is not cls) == (len(fields) >= 2), cls
        required = [f"<{f.name}>" for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        made, built = cls(*required), build(*required)
        assert type(built) is cls and built == made and repr(built) == repr(made)
        assert pickle.dumps(built) == pickle.dumps(made)
        if fields:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(built, fields[0].name, 1)
    assert own and records.builder(messages.ComputeTask) is not messages.ComputeTask
    built = records.builder(messages.ComputeTask)("k", "m:f", priority=3)
    assert built.who_has == {} and built.priority == 3
    assert built.who_has is not records.builder(messages.ComputeTask)("k", "m:f").who_has
