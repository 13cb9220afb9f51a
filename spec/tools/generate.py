#!/usr/bin/env python3
"""Regenerate every part of spec/ that is derived from dist_protocol, in one command:

    python spec/tools/generate.py           # rewrite whatever is stale
    python spec/tools/generate.py --check   # only report; exit status 1 when something is stale

* ``schema/messages.json``: messages, records, types and error codes, from ``describe_ops()``,
  ``describe_records()`` and ``ERROR_CODES``;
* ``vectors/*.json``: the cases of ``vector_cases.py``, with outputs computed by the code;
* the marked regions of ``PROTOCOL.md``: the message catalogue, the error codes and the limits;
* ``diagrams/center-tasks.md``: a task's states at the center, from dist-center's transition
  table (when dist-center is importable; its tests hold the file to the table).

Needs dist-protocol importable (``pip install -e packages/dist-protocol``).
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import io
import json
import sys
import tokenize
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
SPEC = TOOLS.parent
if str(TOOLS) not in sys.path:  # run as a script this is automatic; imported by tests it is not
    sys.path.insert(0, str(TOOLS))

from dist_protocol.errors import ERROR_CODES  # noqa: E402
from dist_protocol.features import FEATURES  # noqa: E402
from dist_protocol.framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS  # noqa: E402
from dist_protocol.handshake import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION  # noqa: E402
from dist_protocol.messages import OPS, RECORDS, describe_ops, describe_records  # noqa: E402
from dist_protocol.wiretypes import field_specs  # noqa: E402
from op_notes import OP_NOTES  # noqa: E402
from vector_cases import all_vectors  # noqa: E402

COMMAND = "python spec/tools/generate.py"

TYPES = {
    "str": "msgpack str (UTF-8)",
    "int": "msgpack int; a float is not an int, nor is a bool",
    "float": "msgpack float; an int is accepted too",
    "bool": "msgpack true or false; an int is not a bool",
    "bin": "msgpack bin (raw bytes)",
    "any": "any msgpack value",
    "payload": "a map {serializer: str, frames: list<int>} naming payload frames of the batch "
               "(indices >= 1, at least one; the serializer's frame count under 'serializers'); "
               "with a compression feature agreed also compression: list<str|nil>, one codec "
               "(\"lz4\", \"zstd\") or nil per frame (PROTOCOL.md, Payloads)",
    "list<T>": "msgpack array whose items are T",
    "map<T>": "msgpack map with str keys and T values",
    "A|B": "a value of type A or of type B",
    "Record": "a capitalised name is a record (a map) defined under 'records'",
}

# -- schema/messages.json ---------------------------------------------------------------------


def build_schema() -> dict:
    return {
        "description": "The dist wire protocol's messages, generated from dist_protocol by "
                       f"`{COMMAND}`. Validated by meta.schema.json.",
        "protocolVersion": PROTOCOL_VERSION,
        "minProtocolVersion": MIN_PROTOCOL_VERSION,
        "types": TYPES,
        "serializers": {
            "msgpack": {"minFrames": 1, "maxFrames": 1,
                        "readers": "any language; extension type 1 is a key reference"},
            "pickle": {"minFrames": 1, "maxFrames": None,
                       "readers": "Python: a pickle (protocol 5), then its out-of-band buffers"},
            "bytes": {"minFrames": 1, "maxFrames": 1, "readers": "any language: raw bytes"},
        },
        "messages": described_ops(),
        "records": described_records(),
        "errorCodes": dict(ERROR_CODES),
        "features": dict(FEATURES),
    }


def with_notes(fields: dict, cls: type) -> dict:
    """Each field's description, as the catalogue's notes column gives it (the comment on its
    line in the class)."""
    notes = field_notes(cls)
    return {name: {**spec, **({"description": notes[name]} if notes.get(name) else {})}
            for name, spec in fields.items()}


def replies_named(reply: str) -> list[str]:
    """The ops a reply text names (in backticks), in order: what may answer the op."""
    named = [word for word in reply.split("`")[1::2] if word in OPS]
    return list(dict.fromkeys(named))


def described_ops() -> dict:
    """``describe_ops()`` with the catalogue's prose: what each op is for, what answers it
    (as text and as the list of ops), and each field's note."""
    ops = describe_ops()
    for op, entry in ops.items():
        cls = OPS[op]
        purpose, reply = OP_NOTES.get(op, (docstring(cls), "—"))
        entry["fields"] = with_notes(entry["fields"], cls)
        ops[op] = {**({"description": purpose} if purpose else {}), **entry, "reply": reply,
                   "replies": replies_named(reply)}
    return ops


def described_records() -> dict:
    records = describe_records()
    return {name: with_notes(fields, RECORDS[name]) for name, fields in records.items()}


# -- PROTOCOL.md ----------------------------------------------------------------------------------


def field_notes(cls: type) -> dict[str, str]:
    """The comment at the end of each field's line in the class source: ``name: T  # note``."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    notes: dict[str, str] = {}
    line: list[tokenize.TokenInfo] = []
    for token in tokenize.generate_tokens(io.StringIO(inspect.cleandoc(source)).readline):
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            words = [t for t in line if t.type not in (tokenize.INDENT, tokenize.DEDENT)]
            if (len(words) >= 3 and words[0].type == tokenize.NAME and words[1].string == ":"
                    and words[-1].type == tokenize.COMMENT):
                notes[words[0].string] = words[-1].string.lstrip("#").strip()
            line = []
        else:
            line.append(token)
    return notes


def docstring(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    # A dataclass without a docstring gets its signature as one: that says nothing new.
    return "" if doc.startswith(f"{cls.__name__}(") else " ".join(doc.split("\n\n")[0].split())


def default_text(default: object) -> str:
    if default is None:
        return ""
    if callable(default):  # a default factory (list, dict)
        default = default()
    return f"`{json.dumps(default, ensure_ascii=False)}`"


def fields_table(cls: type) -> list[str]:
    specs = field_specs(cls)
    if not specs:
        return ["No fields."]
    notes = field_notes(cls)
    rows = ["| field | type | required | default | notes |", "|---|---|---|---|---|"]
    for f in specs:
        note = notes.get(f.name, "")
        if f.minimum is not None:
            note = f"each number finite and ≥ {f.minimum:g}" + (f"; {note}" if note else "")
        if f.values is not None:
            note = "one of " + ", ".join(f"`{v}`" for v in f.values) + (f"; {note}" if note
                                                                         else "")
        if f.length is not None:
            note = f"{f.length} bytes" + (f"; {note}" if note else "")
        if f.feature:
            note = f"only with feature `{f.feature}`" + (f"; {note}" if note else "")
        # GitHub tables split cells at every "|", even inside code: it must be escaped.
        rows.append(f"| `{f.name}` | `{f.type.replace('|', chr(92) + '|')}` | "
                    f"{'yes' if f.required else 'no'} | "
                    f"{'' if f.required else default_text(f.default)} | "
                    f"{note.replace('|', '&#124;')} |")
    return rows


def arrow(direction: str) -> str:
    return direction.replace("->", " → ")


def group_title(direction: str) -> str:
    sender, receiver = direction.split("->")
    if {sender, receiver} <= {"initiator", "acceptor", "any"}:
        return "Handshake and errors (any connection)"
    if receiver == "worker" and sender in ("client", "worker"):
        return "Data plane (to a worker)"
    return f"{sender.capitalize()} to {receiver}"


def render_catalogue() -> str:
    groups: dict[str, list[str]] = {}
    for op, cls in OPS.items():
        groups.setdefault(group_title(cls.direction[0]), []).append(op)
    out: list[str] = []
    for title, ops in groups.items():
        out += [f"### {title}", ""]
        for op in ops:
            cls = OPS[op]
            purpose, reply = OP_NOTES.get(op, (docstring(cls), "—"))
            senders = ", ".join(f"**{arrow(d)}**" for d in cls.direction)
            gate = f" · only with feature `{cls.feature}`" if cls.feature else ""
            out += [f"#### {op}", "",
                    f"{senders} · since version {cls.since}{gate} · reply: {reply}", ""]
            if purpose:
                out += [purpose, ""]
            out += [*fields_table(cls), ""]
    out += ["### Records", "", "Maps that appear inside messages.", ""]
    for name in describe_records():
        record = RECORDS[name]
        out += [f"#### {name}", "", docstring(record), "", *fields_table(record), ""]
    return "\n".join(out).rstrip() + "\n"


def render_error_codes() -> str:
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| `{code}` | {meaning} |" for code, meaning in ERROR_CODES.items()]
    return "\n".join(rows) + "\n"


def render_features() -> str:
    rows = ["| feature | a peer that announces it |", "|---|---|"]
    rows += [f"| `{name}` | {meaning} |" for name, meaning in FEATURES.items()]
    return "\n".join(rows) + "\n"


def size_text(n: int) -> str:
    if n >= 2**30 and n % 2**30 == 0:
        return f"{n // 2**30} GiB ({n:,})"
    return f"{n:,}"


def render_limits() -> str:
    rows = ["| limit | before the handshake completes | after (the default; configurable) |",
            "|---|---|---|"]
    for name, label in (("max_frames", "frames per batch"),
                        ("max_frame_bytes", "bytes per frame"),
                        ("max_batch_bytes", "bytes per batch (all frames)")):
        rows.append(f"| {label} (`{name}`) | {size_text(getattr(UNAUTHENTICATED_LIMITS, name))} "
                    f"| {size_text(getattr(DEFAULT_LIMITS, name))} |")
    return "\n".join(rows) + "\n"


REGIONS = {"catalogue": render_catalogue, "error-codes": render_error_codes,
           "limits": render_limits, "features": render_features}


def fill_regions(text: str) -> str:
    for name, render in REGIONS.items():
        begin = f"<!-- BEGIN GENERATED {name}: {COMMAND} -->"
        end = f"<!-- END GENERATED {name} -->"
        if text.count(begin) != 1 or text.count(end) != 1:
            raise SystemExit(f"PROTOCOL.md needs exactly one '{begin}' ... '{end}' region")
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        text = f"{head}{begin}\n{render()}{end}{tail}"
    return text


# -- all outputs --------------------------------------------------------------------------------


def json_text(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file and the text it should have now."""
    files = {SPEC / "schema" / "messages.json": json_text(build_schema())}
    for name, vectors in all_vectors().items():
        files[SPEC / "vectors" / f"{name}.json"] = json_text(vectors)
    protocol = SPEC / "PROTOCOL.md"
    files[protocol] = fill_regions(protocol.read_text(encoding="utf-8"))
    if importlib.util.find_spec("dist_center") is not None:
        from dist_center.transition_table import lifecycle_diagram
        files[SPEC / "diagrams" / "center-tasks.md"] = lifecycle_diagram()
    return files


def stale() -> list[Path]:
    return [path for path, text in outputs().items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report stale files, change none")
    args = parser.parse_args(argv)
    changed = []
    for path, text in outputs().items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(path.relative_to(SPEC.parent))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if not changed:
        print("spec/ is up to date")
        return 0
    verb = "stale (run `" + COMMAND + "`)" if args.check else "updated"
    for path in changed:
        print(f"{verb}: {path}")
    return 1 if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
