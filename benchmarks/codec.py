"""The batch codec alone: CPU per message to encode (messages -> frames) and to decode and
validate (frames -> messages) the ops every task crosses the wire in.

Every process pays these per message: the client encodes submits and decodes key-in-memory,
the center decodes submits and task-finished and encodes compute-task, key-in-memory and
free-keys, the workers the other way round. The messages are shaped like the ones the client,
center and workers send (a map's shared function payload, a small args payload per task, a
finished task's small value...).

    python benchmarks/codec.py [--ops submit-1,compute-task] [--repeat 7]
    python benchmarks/codec.py --callgrind [--ops ...]
    python benchmarks/codec.py --columnar [--callgrind] [--ops ...]
    python benchmarks/codec.py --frame-columns [--callgrind] [--ops ...]

The first prints CPU µs per message (the median of ``--repeat`` timed runs, with ``time.
process_time``). ``--callgrind`` counts instructions per message instead, which the load of a
shared machine does not change: each op runs under ``valgrind --tool=callgrind`` once with no
iterations and once with some, and the difference is divided by the messages coded.
``--columnar`` codes the batches as a connection that agreed the ``columns`` feature does
(runs of one op as column blocks); ``--frame-columns`` as one that agreed ``frame-columns``
too (their columns of one-frame payloads as frame columns). Results go to
``benchmarks/results/codec.json`` (and ``codec-columnar.json``, ``codec-callgrind.json``...).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _ops() -> dict[str, tuple[int, Callable[[int], Any]]]:
    """op label -> (messages per batch, message number -> message)."""
    from dist_protocol.messages import (ComputeTask, FreeKeys, Heartbeat, KeyInMemory, Submit,
                                        TaskFinished, TaskSpec)
    from dist_protocol.serialize import Payload

    function = Payload("pickle", [b"\x80\x05\x95" + b"bench_tasks\x94\x8c\x03inc" * 3])
    small_value = Payload("pickle", [b"\x80\x05K\x2a."])

    def args(i: int) -> Payload:
        return Payload("pickle", [b"\x80\x05\x95\x0b\x00(J" + i.to_bytes(4, "little") + b"\x85}t."])

    def task(i: int) -> TaskSpec:
        return TaskSpec(key=f"inc-{i:08x}", function=function, args=args(i),
                        pickled_with="cpython-3.11")

    def submit(n: int) -> Callable[[int], Any]:
        return lambda i: Submit(tasks=[task(i * n + j) for j in range(n)])

    metrics = {"rss": 123_456_789, "cpu": 12.5, "memory_target": 0.6, "managed": 4096,
               "spilled": 0, "executing": 1, "ready": 0, "in_flight": 0, "time": 1.7e9}
    return {
        "submit-1": (100, submit(1)),
        "submit-1000": (1, submit(1000)),
        "compute-task": (100, lambda i: ComputeTask(
            key=f"inc-{i:08x}", function=function, args=args(i), priority=-i,
            pickled_with="cpython-3.11")),
        "compute-task/1": (1, lambda i: ComputeTask(
            key=f"inc-{i:08x}", function=function, args=args(i), priority=-i,
            pickled_with="cpython-3.11")),
        "compute-task-deps": (100, lambda i: ComputeTask(
            key=f"inc-{i:08x}", function=function, args=args(i),
            who_has={f"inc-{i - 1:08x}": ["tcp://127.0.0.1:40001"]},
            nbytes={f"inc-{i - 1:08x}": 28}, priority=-i, pickled_with="cpython-3.11")),
        "task-finished": (100, lambda i: TaskFinished(
            key=f"inc-{i:08x}", nbytes=28, type="int", start=1.7e9 + i, stop=1.7e9 + i + 1e-4)),
        "task-finished-value": (100, lambda i: TaskFinished(
            key=f"inc-{i:08x}", nbytes=28, type="int", start=1.7e9 + i, stop=1.7e9 + i + 1e-4,
            value=small_value)),
        "task-finished/1": (1, lambda i: TaskFinished(
            key=f"inc-{i:08x}", nbytes=28, type="int", start=1.7e9 + i, stop=1.7e9 + i + 1e-4,
            value=small_value)),
        "key-in-memory": (100, lambda i: KeyInMemory(
            key=f"inc-{i:08x}", nbytes=28, type="int", workers=["tcp://127.0.0.1:40001"])),
        "key-in-memory-value": (100, lambda i: KeyInMemory(
            key=f"inc-{i:08x}", nbytes=28, type="int", workers=["tcp://127.0.0.1:40001"],
            value=Payload("pickle", [b"\x80\x05J" + i.to_bytes(4, "little") + b"."]))),
        "free-keys": (100, lambda i: FreeKeys(keys=[f"inc-{i:08x}"])),
        "heartbeat": (100, lambda i: Heartbeat(metrics=metrics)),
    }


# (columns, frame-columns): the features the batches are coded for
Forms = tuple[bool, bool]


def _setup(label: str, forms: Forms
           ) -> tuple[int, list[Any], list[Any], Callable[[], Any], Callable[[], Any]]:
    """(messages per batch, messages, frames, encode one batch, decode one batch)."""
    from dist_protocol.messages import decode_batch, encode_batches

    per_batch, build = _ops()[label]
    messages = [build(i) for i in range(per_batch)]
    (frames,) = encode_batches(messages, 100_000, *forms)
    wire = [bytes(f) for f in frames]
    assert decode_batch(wire, *forms) == messages, label
    return (per_batch, messages, wire, lambda: encode_batches(messages, 100_000, *forms),
            lambda: decode_batch(wire, *forms))


def _count(label: str, repeat: int, forms: Forms) -> dict[str, Any]:
    per_batch, messages, _, encode, decode = _setup(label, forms)
    tasks = sum(len(getattr(m, "tasks", ())) or 1 for m in messages)
    # about 20 ms of work per timed run, whatever the op
    calls = max(1, 2000 // tasks)
    out: dict[str, Any] = {"messages_per_batch": per_batch, "tasks_per_batch": tasks}
    for phase, run in (("encode", encode), ("decode", decode)):
        samples = []
        for _ in range(repeat):
            start = time.process_time()
            for _ in range(calls):
                run()
            samples.append((time.process_time() - start) / (calls * per_batch) * 1e6)
        out[f"{phase}_us"] = statistics.median(samples)
        out[f"{phase}_samples"] = samples
    return out


def _child(label: str, phase: str, batches: int, forms: Forms) -> None:
    """The process callgrind counts: set up, then code ``batches`` batches of ``phase``."""
    _, _, _, encode, decode = _setup(label, forms)
    run = encode if phase == "encode" else decode
    for _ in range(batches):
        run()


def _instructions(label: str, phase: str, batches: int, forms: Forms) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               sys.executable, __file__, "--child", label, phase, str(batches),
               *(["--columnar"] if forms[0] else []),
               *(["--frame-columns"] if forms[1] else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind: {done.stderr[-500:]}")
    return int(found.group(1))


def _callgrind(label: str, forms: Forms) -> dict[str, Any]:
    per_batch, build = _ops()[label]
    batches = max(2, 1000 // per_batch) if label != "submit-1000" else 3
    base = _instructions(label, "none", 0, forms)
    out: dict[str, Any] = {"messages_per_batch": per_batch}
    for phase in ("encode", "decode"):
        total = _instructions(label, phase, batches, forms)
        out[f"{phase}_instructions"] = (total - base) / (batches * per_batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="", help="comma-separated labels (default: all)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--columnar", action="store_true",
                        help="code runs of one op as column blocks (feature columns)")
    parser.add_argument("--frame-columns", action="store_true",
                        help="and their columns of one-frame payloads as frame columns "
                             "(feature frame-columns; implies --columnar)")
    parser.add_argument("--child", nargs=3, metavar=("LABEL", "PHASE", "BATCHES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    forms = (args.columnar or args.frame_columns, args.frame_columns)
    if args.child:
        label, phase, batches = args.child
        _child(label, phase, int(batches), forms)
        return
    sys.path.insert(0, str(HERE))
    labels = [op for op in args.ops.split(",") if op] or list(_ops())
    load = os.getloadavg()[0]
    results = {}
    for label in labels:
        if args.callgrind:
            r = results[label] = _callgrind(label, forms)
            print(f"{label:22} encode {r['encode_instructions']:>10,.0f}  decode "
                  f"{r['decode_instructions']:>10,.0f} instructions per message", flush=True)
        else:
            r = results[label] = _count(label, args.repeat, forms)
            print(f"{label:22} encode {r['encode_us']:8.2f}  decode {r['decode_us']:8.2f} "
                  f"µs CPU per message", flush=True)
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    RESULTS.mkdir(exist_ok=True)
    name = ("codec-callgrind" if args.callgrind else "codec") + (
        "-frame-columns" if args.frame_columns else "-columnar" if args.columnar else "") + ".json"
    (RESULTS / name).write_text(json.dumps({"load": load, "ops": results}, indent=1))


if __name__ == "__main__":
    main()
