"""spec/ and the code hold each other: the schema lists exactly the message classes (both
ways), the meta-schema accepts it, and every generated file is what the generator makes now.

When a test here fails after a change to the messages, run ``python spec/tools/generate.py``
from the repository root and review the diff.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re

import jsonschema
import pytest

from dist_protocol import errors
from dist_protocol.errors import ERROR_CODES, ProtocolError
from dist_protocol.features import FEATURES
from dist_protocol.handshake import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION
from dist_protocol.messages import OPS, describe_ops, describe_records
from dist_protocol.serialize import SERIALIZERS
from dist_protocol.testing import REGENERATE_HINT, load_vectors, spec_dir

pytestmark = pytest.mark.timeout(60)

SPEC = spec_dir()


def load_json(relative: str) -> dict:
    path = SPEC / relative
    assert path.is_file(), f"{path} is missing; {REGENERATE_HINT}"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def generate():
    """spec/tools/generate.py, imported from its file (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("dist_spec_generate",
                                                  SPEC / "tools" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the schema against the code ------------------------------------------------------------------


def test_the_schema_lists_exactly_the_message_classes_both_ways():
    schema = load_json("schema/messages.json")
    in_schema, in_code = set(schema["messages"]), set(OPS)
    assert not in_code - in_schema, (f"ops missing from spec/schema/messages.json: "
                                     f"{sorted(in_code - in_schema)}; {REGENERATE_HINT}")
    assert not in_schema - in_code, (f"ops in spec/schema/messages.json with no message class: "
                                     f"{sorted(in_schema - in_code)}; {REGENERATE_HINT}")
    for op, described in describe_ops().items():
        assert without_prose(schema["messages"][op]) == described, (f"{op} differs; "
                                                                    f"{REGENERATE_HINT}")


PROSE = ("description", "reply", "replies")  # from spec/tools/op_notes.py and field comments


def without_prose(entry: dict) -> dict:
    """A schema entry as the code describes it: without the catalogue's prose."""
    def fields(specs: dict) -> dict:
        return {name: {k: v for k, v in spec.items() if k != "description"}
                for name, spec in specs.items()}
    if "fields" in entry:
        return {**{k: v for k, v in entry.items() if k not in PROSE},
                "fields": fields(entry["fields"])}
    return fields(entry)


def test_the_schema_records_versions_and_error_codes_are_the_code_s():
    schema = load_json("schema/messages.json")
    assert {name: without_prose(fields) for name, fields in schema["records"].items()} == \
        describe_records(), REGENERATE_HINT
    assert schema["errorCodes"] == ERROR_CODES, REGENERATE_HINT
    assert (schema["minProtocolVersion"], schema["protocolVersion"]) == (
        MIN_PROTOCOL_VERSION, PROTOCOL_VERSION), REGENERATE_HINT


def test_the_schema_features_and_serializers_are_the_code_s():
    schema = load_json("schema/messages.json")
    assert schema["features"] == FEATURES, REGENERATE_HINT
    assert list(schema["serializers"]) == list(SERIALIZERS)
    changelog = (SPEC / "CHANGELOG.md").read_text(encoding="utf-8")
    for feature in FEATURES:  # every feature is announced where third parties look
        assert f"`{feature}`" in changelog, feature


def test_every_field_says_since_when_and_optional_ones_their_default():
    schema = load_json("schema/messages.json")
    for op, spec in schema["messages"].items():
        for name, field in spec["fields"].items():
            assert 1 <= field["since"] <= PROTOCOL_VERSION, (op, name)
    assert schema["messages"]["replicate"]["fields"]["n"]["default"] == 2
    assert schema["messages"]["hello"]["fields"]["role"]["values"] == ["client", "worker", "peer"]
    assert schema["messages"]["hello"]["fields"]["nonce"]["length"] == 32


def test_every_error_class_has_a_spec_code():
    classes, todo = [], [ProtocolError]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo += cls.__subclasses__()
    assert {cls.code for cls in classes} <= set(ERROR_CODES)
    assert {name for name in dir(errors) if name.endswith("Error") and name != "CommClosedError"
            } <= {cls.__name__ for cls in classes} | {"ProtocolError"}


def test_every_op_is_introduced_by_a_released_version():
    assert all(MIN_PROTOCOL_VERSION <= cls.since <= PROTOCOL_VERSION for cls in OPS.values())


# -- the meta-schema -------------------------------------------------------------------------------


def test_the_meta_schema_is_a_valid_json_schema_and_accepts_the_schema():
    meta = load_json("schema/meta.schema.json")
    jsonschema.Draft202012Validator.check_schema(meta)
    jsonschema.Draft202012Validator(meta).validate(load_json("schema/messages.json"))


@pytest.mark.parametrize("breakage", [
    lambda s: s["messages"]["submit"].pop("since"),
    lambda s: s["messages"].__setitem__("Not_Kebab", s["messages"]["release"]),
    lambda s: s["messages"]["release"]["fields"]["keys"].__setitem__("type", "list of str"),
    lambda s: s["messages"]["release"]["fields"]["keys"].__setitem__("required", "yes"),
    lambda s: s["messages"]["release"].__setitem__("direction", ["client to center"]),
    lambda s: s["errorCodes"].__setitem__("Bad Code", "x"),
    lambda s: s.pop("records"),
], ids=["no-since", "op-name", "type", "required", "direction", "error-code", "no-records"])
def test_the_meta_schema_rejects_a_broken_catalogue(breakage):
    broken = copy.deepcopy(load_json("schema/messages.json"))
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, load_json("schema/meta.schema.json"),
                            cls=jsonschema.Draft202012Validator)


TYPE_TOKEN = re.compile(r"list<|map<|>|\||[A-Za-z]+")
SCALARS = {"str", "int", "float", "bool", "bin", "any", "payload"}


def parse_type(text: str, records: set[str]) -> None:
    """Parse the type grammar fully: ``T := name | list<T> | map<T> | T|T``."""
    tokens = TYPE_TOKEN.findall(text)
    assert "".join(tokens) == text, f"stray characters in {text!r}"

    def alternatives(i: int) -> int:
        i = single(i)
        while i < len(tokens) and tokens[i] == "|":
            i = single(i + 1)
        return i

    def single(i: int) -> int:
        token = tokens[i]
        if token in ("list<", "map<"):
            i = alternatives(i + 1)
            assert tokens[i] == ">", f"unclosed {token} in {text!r}"
            return i + 1
        assert token in SCALARS or token in records, f"unknown type {token!r} in {text!r}"
        return i + 1

    assert alternatives(0) == len(tokens), f"cannot parse {text!r}"


def test_every_field_type_parses_and_names_known_records():
    schema = load_json("schema/messages.json")
    records = set(schema["records"])
    field_sets = [m["fields"] for m in schema["messages"].values()] + list(
        schema["records"].values())
    for fields in field_sets:
        for field in fields.values():
            parse_type(field["type"], records)


# -- generated files ------------------------------------------------------------------------------


def test_every_generated_file_is_current(generate):
    for path, text in generate.outputs().items():
        assert path.is_file(), f"{path} is missing; {REGENERATE_HINT}"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(SPEC.parent)} differs from what the code generates; "
            f"{REGENERATE_HINT}")


def test_the_generator_check_mode_agrees(generate, capsys):
    assert generate.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_op_has_a_section_and_every_link_and_vector_section_resolves():
    protocol = (SPEC / "PROTOCOL.md").read_text(encoding="utf-8")
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", protocol, re.MULTILINE)}
    assert set(OPS) <= anchors, REGENERATE_HINT
    links = set(re.findall(r"\]\(#([^)]+)\)", protocol))
    assert links <= anchors, f"broken links in PROTOCOL.md: {sorted(links - anchors)}"
    for name in ("framing", "messages", "columns", "handshake", "auth"):
        vectors = load_vectors(name)
        sections = {case["section"].split("#", 1)[1] for case in vectors["cases"]}
        sections |= {p["section"].split("#", 1)[1] for p in vectors.get("payloads", [])}
        assert sections <= anchors, f"{name}.json names missing sections {sections - anchors}"


def test_the_changelog_describes_every_version():
    changelog = (SPEC / "CHANGELOG.md").read_text(encoding="utf-8")
    for version in range(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION + 1):
        assert f"## Version {version}\n" in changelog


def test_the_spec_readme_names_the_minimal_conformance_level():
    readme = (SPEC / "README.md").read_text(encoding="utf-8")
    minimal = next(line for line in readme.splitlines() if line.startswith("| minimal"))
    assert all(f"`{op}`" in minimal for op in ("hello", "submit", "who-has", "get-data",
                                               "release"))
