"""The catalogue's records with generated methods (``records``) are the classes
``dataclass(frozen=True, slots=True)`` makes, and the generated module is up to date."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dist_protocol import messages, records
from dist_protocol.records import frozen_record

HERE = Path(__file__).resolve().parent
GENERATED_MODULES = ["dist_protocol.messages"]


def _shown(value: Any) -> str:
    return "MISSING" if value is dataclasses.MISSING else repr(value)


def _outcome(call: Any) -> Any:
    try:
        return ["ok", repr(call())]
    except Exception as exc:  # noqa: BLE001 -- the error is what is compared
        return ["error", type(exc).__name__, str(exc)]


def describe(cls: type) -> dict[str, Any]:
    """Everything a user of ``cls`` can see of how it was made."""
    fields = dataclasses.fields(cls)
    required = {f.name: f"<{f.name}>" for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    obj = cls(**required)
    twin = cls(*required.values())
    first = fields[0].name if fields else None
    changed = dataclasses.replace(obj, **{first: "changed"}) if first else obj
    return {
        "doc": cls.__doc__,
        "signature": str(inspect.signature(cls)),
        "init_annotations": repr(cls.__init__.__annotations__),
        "init_qualname": cls.__init__.__qualname__,
        "params": repr(cls.__dataclass_params__),  # type: ignore[attr-defined]
        "match_args": list(cls.__match_args__),  # type: ignore[attr-defined]
        "slots": list(cls.__slots__),  # type: ignore[attr-defined]
        "fields": [[f.name, f.type, _shown(f.default), _shown(f.default_factory), f.init,
                    f.repr, f.compare, f.hash, _shown(f.kw_only), repr(dict(f.metadata))]
                   for f in fields],
        "repr": repr(obj),
        "equal": [obj == twin, obj != twin, obj == changed, obj == object(), obj == 1],
        "hash": _outcome(lambda: hash(obj) == hash(twin)),
        "pickled": pickle.dumps(obj, protocol=4).hex(),
        "unpickled": repr(pickle.loads(pickle.dumps(obj))),
        "copied": repr(copy.deepcopy(obj)),
        "state": repr(obj.__getstate__()),  # type: ignore[attr-defined]
        "asdict": repr(dataclasses.asdict(obj)),
        # (a name that is no field: Python 3.11's dataclass raises TypeError from a
        # ``super()`` of the class it replaced by the slots one; see the test below)
        "assign": _outcome(lambda: setattr(obj, first, 1)) if first else None,
        "delete": _outcome(lambda: delattr(obj, first)) if first else None,
        "missing": _outcome(lambda: cls()) if required else None,
        "extra": _outcome(lambda: cls(*required.values(), *range(len(fields) + 1))),
        "unknown": _outcome(lambda: cls(**required, no_such_field=1)),
    }


def describe_catalogue() -> dict[str, Any]:
    return {cls.__qualname__: describe(cls)
            for cls in [*messages.RECORDS.values(), *messages.OPS.values()]}


def test_generated_records_behave_as_the_dataclasses_they_stand_for():
    reference = subprocess.run(
        [sys.executable, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); "
         "from test_protocol_records import describe_catalogue; "
         "print(json.dumps(describe_catalogue()))", str(HERE)],
        env=dict(os.environ, **{records.REFERENCE_ENV: "1"}), check=True, capture_output=True,
        text=True).stdout
    expected = json.loads(reference)
    got = json.loads(json.dumps(describe_catalogue()))
    assert list(got) == list(expected)
    for name in expected:
        assert got[name] == expected[name], name


def test_every_record_of_the_catalogue_has_its_generated_methods():
    for cls in [*messages.RECORDS.values(), *messages.OPS.values()]:
        for name in records.METHOD_NAMES:
            code = getattr(cls, name).__code__
            assert code.co_filename.endswith("generated_messages.py"), (cls, name)


def test_no_attribute_of_a_record_can_be_assigned_or_deleted():
    for obj in (messages.Authenticated(), messages.Heartbeat()):
        for name in ("x", *obj.__slots__):
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
                setattr(obj, name, 1)
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete"):
                delattr(obj, name)


@pytest.mark.parametrize("module", GENERATED_MODULES)
def test_generated_modules_are_up_to_date(module):
    result = subprocess.run([sys.executable, "-m", "dist_protocol.records_source", module,
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


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
