"""The center's cost per task without sockets, processes or a busy machine in the way.

``record`` runs a real cluster (a center in this process, two ``dworker``s, a client) through
a map of N tasks, the dask.array graph of ``(x + x.T).sum(axis=0)``, ``scale.py``'s graph
(``arange`` in chunks of 4 summed by a tree, about ``--arange`` tasks), a chain of tasks (each
the input of the next) and sequential ``submit(...).result()`` round trips (the events of
``roundtrip_cpu.py``'s two modes, one task per ``handle`` call), and writes down every
call the server made to ``CenterState.handle``: the events, the clock it read, and how many
messages the state answered with. ``replay`` feeds those calls to a fresh ``CenterState`` in one
process and measures the CPU time spent in ``handle`` alone, per task. The replay checks that
the state answers each call with as many messages as it did while recording, so it measures
the same decisions, not some other path.

    python benchmarks/center_replay.py                    # record (if needed), then replay
    python benchmarks/center_replay.py record [--n 100000] [--array 6000,500] [--chain 1000]
                                              [--latency 1000]
    python benchmarks/center_replay.py replay [--repeat 5] [--profile]
    python benchmarks/center_replay.py memory [--top 15]  # bytes per task at each peak
    python benchmarks/center_replay.py instructions [--segments map,chain] [--profile PATH]

With ``--profile`` one more pass runs under cProfile and the top functions are printed.
``instructions`` counts what does not depend on the machine's load: for each segment named,
one pass runs under ``valgrind --tool=callgrind`` and the instructions of that segment's
``handle`` calls alone are counted (they are made through ``itertools.starmap``, and callgrind
collects only inside ``starmap_next``; the other segments, imports and unpickling run
uncounted), and printed per task (``--profile``: the callgrind files kept as
``PATH.SEGMENT``, for ``callgrind_annotate``).
Results go to ``benchmarks/results/center-replay.json``; recordings to
``benchmarks/results/center-events-*.pickle`` (all git-ignored).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pickle
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_RECORDING = RESULTS / "center-events.pickle"
HASH_SEED = "0"


def catalogue_fingerprint() -> str:
    """What the recorded messages, task specs and the center's events look like: a recording
    made with other classes cannot be unpickled into today's."""
    import hashlib

    from dist_center import events
    from dist_protocol.messages import describe_ops, describe_records

    event_slots = sorted((name, list(getattr(kind, "__slots__", ())))
                         for name, kind in vars(events).items() if isinstance(kind, type))
    text = json.dumps([describe_ops(), describe_records(), event_slots], sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recording_matches(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return pickle.load(f).get("catalogue") == catalogue_fingerprint()
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError):
        return False


# -- recording ------------------------------------------------------------------------------
class Recording:
    """Every ``handle`` call of one center, pickled as it happens (the state may change the
    messages it was given afterwards), under the name of the workload running."""

    def __init__(self) -> None:
        self.segment = "setup"
        self.calls: list[tuple[str, float, bytes, int]] = []
        self.lock = threading.Lock()

    def wrap(self, state) -> RecordedState:
        """``state`` as the server is to see it: its clock's readings and its ``handle`` calls
        written down."""
        clock = state.clock
        now = [0.0]

        def read_clock() -> float:
            now[0] = clock()
            return now[0]

        def recorded(blob: bytes, messages_out: int) -> None:
            with self.lock:
                self.calls.append((self.segment, now[0], blob, messages_out))

        state.clock = read_clock
        return RecordedState(state, recorded)


class RecordedState:
    """A center's state whose ``handle`` calls are recorded; everything else is the state's
    own (the state declares its attributes, so its ``handle`` cannot be replaced on it)."""

    def __init__(self, state, recorded) -> None:
        self._state = state
        self._recorded = recorded

    def handle(self, *events):
        # (pickled first: the state may change the messages it was given)
        blob = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
        out = self._state.handle(*events)
        self._recorded(blob, len(out))
        return out

    def __getattr__(self, name):
        return getattr(self._state, name)


def start_center(recording: Recording) -> tuple[str, threading.Thread, asyncio.AbstractEventLoop]:
    from dist_center.server import Center

    ready = threading.Event()
    box: dict = {}

    async def serve() -> None:
        center = Center("127.0.0.1:0")
        center.state = recording.wrap(center.state)
        await center.start()
        box["address"], box["loop"], box["center"] = (center.address,
                                                     asyncio.get_running_loop(), center)
        ready.set()
        await center.closed.wait()

    def main() -> None:
        from dist_protocol.comm import run, tune_garbage_collector

        tune_garbage_collector()
        run(serve())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the center did not start")
    return box["address"], thread, box["loop"], box["center"]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def record(args) -> None:
    import bench_tasks as t
    from dist_client import Executor

    recording = Recording()
    address, thread, loop, center = start_center(recording)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    dworker = Path(sys.executable).parent / "dworker"
    workers = [subprocess.Popen([str(dworker), address, "--nthreads", "1", "--no-nanny",
                                 "--name", f"w{i}"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for i in range(2)]
    try:
        wait_for(lambda: len(center.state.workers) == 2, 60, "two workers")
        with Executor(address) as ex:
            ex.gather(ex.map(t.inc, range(-100, 0)))  # warm-up: functions cached, durations known
            wait_for(lambda: not center.state.tasks, 60, "the warm-up's release")
            recording.segment = "map"
            futures = ex.map(t.inc, range(args.n))
            assert ex.gather(futures)[-1] == args.n
            del futures
            wait_for(lambda: not center.state.tasks, 120, "the map's release")
            if args.array:
                import dask.array as da
                import numpy as np

                size, chunk = args.array
                x = da.random.random((size, size), chunks=chunk)
                recording.segment = "array"
                got = (x + x.T).sum(axis=0).compute(scheduler=ex.get)
                expected = (x + x.T).sum(axis=0).compute(scheduler="sync")
                assert np.allclose(got, expected)
                wait_for(lambda: not center.state.tasks, 120, "the array's release")
            if args.arange:
                import dask.array as da

                from scale import ARRAY_CHUNK, ARRAY_SPLIT, array_chunks_for

                size = array_chunks_for(args.arange) * ARRAY_CHUNK
                total = da.arange(size, chunks=ARRAY_CHUNK).sum(split_every=ARRAY_SPLIT)
                recording.segment = "arange"
                assert int(total.compute(scheduler=ex.get)) == size * (size - 1) // 2
                wait_for(lambda: not center.state.tasks, 300, "the arange graph's release")
            if args.chain:
                recording.segment = "chain"
                future = ex.submit(t.inc, 0)
                for _ in range(args.chain - 1):
                    future = ex.submit(t.inc, future)
                assert future.result() == args.chain
                del future
                wait_for(lambda: not center.state.tasks, 60, "the chain's release")
            if args.latency:
                recording.segment = "latency"
                for i in range(args.latency):
                    assert ex.submit(t.inc, i).result() == i + 1
                wait_for(lambda: not center.state.tasks, 60, "the round trips' release")
            recording.segment = "teardown"
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(center.close()))
        thread.join(10)
    args.recording.parent.mkdir(parents=True, exist_ok=True)
    with open(args.recording, "wb") as f:
        pickle.dump({"n": args.n, "array": args.array, "arange": args.arange,
                     "chain": args.chain,
                     "latency": args.latency, "catalogue": catalogue_fingerprint(),
                     "calls": recording.calls}, f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    print(f"recorded {len(recording.calls):,} handle calls to {args.recording}")


# -- replaying ------------------------------------------------------------------------------
def tasks_submitted(events) -> int:
    from dist_center.events import ClientSent
    from dist_protocol.messages import Submit

    return sum(len(e.message.tasks) for e in events
               if isinstance(e, ClientSent) and isinstance(e.message, Submit))


def replay_counted(calls, segment: str) -> None:
    """One pass over the recording with a fresh state, the calls of ``segment`` made through
    ``itertools.starmap`` (what ``instructions`` has callgrind count), the others directly."""
    from itertools import starmap

    from dist_center.state import CenterState

    # (the calls after the segment's last are left out: they cannot change the count)
    last = max((at for at, (name, _, _, _) in enumerate(calls) if name == segment), default=-1)
    calls = calls[:last + 1]
    clock_values = iter([calls[0][1] if calls else 0.0, *(when for _, when, _, _ in calls)])
    state = CenterState(clock=lambda: next(clock_values))
    prepared = [(name, pickle.loads(blob), expected) for name, _, blob, expected in calls]
    handle = state.handle
    mismatches = 0
    gc.collect()
    for name, events, expected in prepared:
        if name == segment:
            for out in starmap(handle, (events,)):
                mismatches += len(out) != expected
        else:
            mismatches += len(handle(*events)) != expected
    if mismatches:
        print(f"WARNING: {mismatches} calls answered with another number of messages than "
              "while recording: the replay took another path", file=sys.stderr)


def instructions(args) -> dict:
    """Instructions per task of each segment's ``handle`` calls, counted by callgrind."""
    import re
    import tempfile

    if not recording_matches(args.recording):
        raise SystemExit(f"{args.recording} was recorded with another message catalogue (or "
                         "is no recording): record it again (the `record` command)")
    with open(args.recording, "rb") as f:
        calls = pickle.load(f)["calls"]
    tasks: dict[str, int] = {}
    for name, _, blob, _ in calls:
        if name in SEGMENTS:
            tasks[name] = tasks.get(name, 0) + tasks_submitted(pickle.loads(blob))
    summary = {}
    with tempfile.TemporaryDirectory() as scratch:
        for segment in args.segments.split(","):
            out = (f"{args.profile}.{segment}" if args.profile
                   else os.path.join(scratch, f"callgrind.{segment}"))
            subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=starmap_next",
                            f"--callgrind-out-file={out}", sys.executable, __file__,
                            "counted", "--segments", segment,
                            "--recording", str(args.recording)],
                           check=True, stderr=subprocess.DEVNULL)
            total = int(re.search(r"^totals: (\d+)", Path(out).read_text(), re.M).group(1))
            summary[segment] = {"tasks": tasks[segment], "instructions": total,
                                "instructions_per_task": total / tasks[segment]}
            print(f"{segment:6} {tasks[segment]:>8,} tasks  {total / 1e6:9,.1f} M instructions "
                  f"in handle, {total / tasks[segment]:,.0f} a task", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "center-instructions.json").write_text(json.dumps(summary, indent=2))
    return summary


def replay_once(calls, profile: bool = False) -> dict[str, dict]:
    """One pass over the recording with a fresh state: CPU seconds in ``handle`` by segment."""
    from dist_center.state import CenterState

    # The state reads the clock once as it is made (when it started), then once per call.
    clock_values = iter([calls[0][1] if calls else 0.0, *(when for _, when, _, _ in calls)])
    state = CenterState(clock=lambda: next(clock_values))
    # Unpickled before the clock starts: decoding is the server's and the protocol's cost.
    prepared = [(segment, pickle.loads(blob), expected) for segment, _, blob, expected in calls]
    by_segment: dict[str, dict] = {}
    mismatches = 0
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
    cpu = time.process_time
    handle = state.handle
    gc.collect()
    if profiler is not None:
        profiler.enable()
    for segment, events, expected in prepared:
        start = cpu()
        out = handle(*events)
        elapsed = cpu() - start
        entry = by_segment.get(segment)
        if entry is None:
            entry = by_segment[segment] = {"cpu_s": 0.0, "calls": 0, "events": 0,
                                           "messages_out": 0, "tasks": 0}
        entry["cpu_s"] += elapsed
        entry["calls"] += 1
        entry["events"] += len(events)
        entry["messages_out"] += len(out)
        entry["tasks"] += tasks_submitted(events)
        if len(out) != expected:
            mismatches += 1
    if profiler is not None:
        profiler.disable()
        import pstats
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    for entry in by_segment.values():
        entry["us_per_task"] = entry["cpu_s"] / entry["tasks"] * 1e6 if entry["tasks"] else None
    by_segment["_mismatches"] = {"calls": mismatches}
    return by_segment


def replay(args) -> dict:
    from dist_protocol.comm import tune_garbage_collector

    tune_garbage_collector()  # as dcenter runs
    if not recording_matches(args.recording):
        raise SystemExit(f"{args.recording} was recorded with another message catalogue (or "
                         "is no recording): record it again (the `record` command)")
    with open(args.recording, "rb") as f:
        recorded = pickle.load(f)
    calls = recorded["calls"]
    runs = []
    for _ in range(args.repeat):
        runs.append(replay_once(calls))
    mismatches = runs[-1].pop("_mismatches")["calls"]
    for run in runs[:-1]:
        run.pop("_mismatches")
    summary = {}
    for segment in SEGMENTS:
        samples = [run[segment]["us_per_task"] for run in runs if segment in run]
        if not samples:
            continue
        summary[segment] = {"tasks": runs[0][segment]["tasks"],
                            "calls": runs[0][segment]["calls"],
                            "median_us_per_task": statistics.median(samples),
                            "us_per_task_runs": samples}
        print(f"{segment:6} {summary[segment]['tasks']:>8,} tasks  "
              f"{summary[segment]['calls']:>7,} handle calls  "
              f"{summary[segment]['median_us_per_task']:7.2f} µs CPU per task (median of "
              f"{len(samples)}: {', '.join(f'{s:.2f}' for s in samples)})")
    if mismatches:
        print(f"WARNING: {mismatches} calls answered with another number of messages than "
              "while recording: the replay took another path")
    if args.profile:
        replay_once(calls, profile=True)
    doc = {"recording": str(args.recording), "n": recorded["n"], "array": recorded["array"],
           "chain": recorded.get("chain"), "latency": recorded.get("latency"),
           "allocator": os.environ.get("PYTHONMALLOC", "pymalloc"),
           "mismatched_calls": mismatches, "segments": summary}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "center-replay.json").write_text(json.dumps(doc, indent=2))
    return doc


SEGMENTS = ("map", "array", "arange", "chain", "latency")


def memory(args) -> dict:
    """The center's memory per task at each segment's peak: the calls are replayed with
    ``tracemalloc`` on, each call's events unpickled just before it (so what the state keeps
    of a message, a task's spec, is counted as the state's, and the rest is freed), and at the
    call after which the state held the most tasks, the memory allocated since the segment
    began is divided by those tasks and split by the line that allocated it."""
    import tracemalloc

    from dist_center.state import CenterState

    with open(args.recording, "rb") as f:
        calls = pickle.load(f)["calls"]

    def peaks() -> dict[str, tuple[int, int]]:
        """Per segment: the index of the call after which the most tasks were held, and how
        many."""
        clock_values = iter([when for _, when, _, _ in calls])
        state = CenterState(clock=lambda: next(clock_values))
        found: dict[str, tuple[int, int]] = {}
        for index, (segment, _, blob, _) in enumerate(calls):
            state.handle(*pickle.loads(blob))
            if len(state.tasks) > found.get(segment, (0, -1))[1]:
                found[segment] = (index, len(state.tasks))
        return found

    at_peak = peaks()
    # The state reads the clock once as it is made (when it started), then once per call.
    clock_values = iter([calls[0][1] if calls else 0.0, *(when for _, when, _, _ in calls)])
    state = CenterState(clock=lambda: next(clock_values))
    gc.collect()
    tracemalloc.start(1)
    summary: dict[str, dict] = {}
    start: tracemalloc.Snapshot | None = None
    segment_now = None
    for index, (segment, _, blob, _) in enumerate(calls):
        if segment != segment_now:
            segment_now = segment
            gc.collect()
            start = tracemalloc.take_snapshot()
        state.handle(*pickle.loads(blob))
        if segment in SEGMENTS and at_peak.get(segment, (None,))[0] == index:
            gc.collect()
            snapshot = tracemalloc.take_snapshot()
            tasks = at_peak[segment][1]
            diff = snapshot.compare_to(start, "lineno")
            total = sum(d.size_diff for d in diff)
            summary[segment] = {"tasks": tasks, "bytes_per_task": total / tasks,
                                "by_line": [(str(d.traceback), d.size_diff / tasks,
                                             d.count_diff / tasks) for d in diff[:args.top]]}
            print(f"{segment:6} {tasks:>8,} tasks held at the peak: "
                  f"{total / tasks:,.0f} bytes per task (traced)")
            for where, size, count in summary[segment]["by_line"]:
                print(f"    {size:8.1f} B {count:6.2f} blocks  {where}")
    tracemalloc.stop()
    for segment, entry in summary.items():
        entry.update(decoding(calls, segment))
        if "decode_peak_bytes_per_task" in entry:
            print(f"{segment:6} its largest submit ({entry['submit_tasks']:,} tasks) decoded "
                  f"from its frames: {entry['frame_bytes_per_task']:,.0f} bytes per task of "
                  f"frames, {entry['decode_peak_bytes_per_task']:,.0f} more at the peak of "
                  f"decoding, {entry['decoded_bytes_per_task']:,.0f} kept")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "center-memory.json").write_text(json.dumps(summary, indent=2))
    return summary


def decoding(calls, segment: str) -> dict:
    """The segment's largest submit, encoded as its client sent it and decoded as the server
    does (``decode_batch``): bytes per task of its frames, and what decoding allocates beyond
    them at its peak (msgpack's maps of the whole message, the records made from them) and
    keeps (the messages). A center holds the frames and that peak at once."""
    import tracemalloc

    from dist_center.events import ClientSent
    from dist_protocol.messages import Submit, decode_batch, encode_batch

    largest = None
    for name, _, blob, _ in calls:
        if name == segment:
            for event in pickle.loads(blob):
                if (isinstance(event, ClientSent) and isinstance(event.message, Submit)
                        and (largest is None or len(event.message.tasks) > len(largest.tasks))):
                    largest = event.message
    if largest is None:
        return {}
    n = len(largest.tasks)
    frames = [bytes(memoryview(frame)) for frame in encode_batch([largest])]
    del largest
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    messages = decode_batch(frames)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del messages
    return {"submit_tasks": n, "frame_bytes_per_task": sum(map(len, frames)) / n,
            "decode_peak_bytes_per_task": (peak - base) / n,
            "decoded_bytes_per_task": (kept - base) / n}


def same_hash_seed() -> None:
    """Record and replay with one hash seed: the state iterates over sets of keys (who holds
    what, which tasks depend on which), and their order decides, for instance, whom a steal
    goes to. With another seed the replay could take another path than the recording."""
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        os.execv(sys.executable, [sys.executable, __file__, *sys.argv[1:]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=["record", "replay", "both", "memory",
                                                       "instructions", "counted"],
                        default="both")
    parser.add_argument("--recording", type=Path, default=DEFAULT_RECORDING)
    parser.add_argument("--n", type=int, default=100_000, help="tasks in the map")
    parser.add_argument("--array", default="6000,500",
                        help="SIZE,CHUNK of the dask.array graph; 'none' to leave it out")
    parser.add_argument("--arange", type=int, default=20_000,
                        help="tasks (about) of scale.py's dask.array graph, arange summed by a "
                             "tree (0 to leave it out)")
    parser.add_argument("--chain", type=int, default=1000,
                        help="tasks in the chain (each the input of the next; 0 to leave it out)")
    parser.add_argument("--latency", type=int, default=1000,
                        help="sequential submit(...).result() round trips (0 to leave them out)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=15,
                        help="memory: the lines that allocated most, per segment")
    parser.add_argument("--profile", nargs="?", const=True, default=False,
                        help="replay: one more pass under cProfile, top functions printed; "
                             "instructions: keep the callgrind files as PROFILE.SEGMENT")
    parser.add_argument("--segments", default=",".join(SEGMENTS),
                        help="instructions: the segments to count, one callgrind pass each")
    args = parser.parse_args(argv)
    same_hash_seed()
    args.array = (None if args.array.lower() == "none"
                  else tuple(int(v) for v in args.array.split(",")))
    if args.command == "record" or (args.command == "both"
                                    and not recording_matches(args.recording)):
        record(args)
    if args.command in ("replay", "both"):
        replay(args)
    if args.command == "memory":
        memory(args)
    if args.command == "instructions":
        instructions(args)
    if args.command == "counted":  # (run by ``instructions`` under callgrind)
        from dist_protocol.comm import tune_garbage_collector

        tune_garbage_collector()
        with open(args.recording, "rb") as f:
            replay_counted(pickle.load(f)["calls"], args.segments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
