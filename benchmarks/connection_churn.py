"""Connection churn: short client sessions at a steady rate, and the servers' RSS meanwhile.

A long-lived cluster sees clients come and go all day. This starts a real ``dcenter`` and
``dworker`` (no nanny, so the worker's RSS is the process that holds the connections) and runs
one of two modes.

Rate (the default): ``--procs`` client processes together open ``--rate`` sessions a second
(default 1,000) for ``--duration`` seconds (default 120), each process on its own event loop,
the sessions started on a fixed schedule whether earlier ones have finished or not (at most
``--in-flight`` open at once per process; a session that would exceed it is counted as
``behind``, not started late). A *session* is, with ``--session wire`` (the default), what an
``Executor`` says to the center from opening to closing, spoken by the protocol layer itself
without the ``Executor``'s own I/O thread: the real handshake (``dist_protocol.comm.connect``,
role ``client``, every feature, the environment), ``session`` and its reply, ``cluster-info``
and its reply, then close; every ``--submit-every``-th session also submits one task and waits
for its result (``submit`` with small values, ``key-in-memory`` carrying the value) before it
closes. With ``--session executor`` a session is ``Executor(address)``, a submit and a gather,
close: the real client, thread and all (about 100-200 a second per core at most). The RSS of
the center and the worker is sampled every second; the report gives the sessions a second
achieved, the handshake and session latency percentiles, errors, the center's CPU per session,
each server's open descriptors and threads at rest before and after, and the RSS slope (MB
per minute, a least-squares line through the samples after ``--settle`` seconds). Exits
non-zero on any error or when either slope exceeds ``--max-slope`` (default 3 MB/min).

The settling time is by default as long as the run takes to submit 6,000 tasks (at least 10 s,
at most half the run): the servers' bounded histories fill until then -- the center's task
stream keeps the last 5,000 tasks, its transition log and the worker's log the last 10,000
transitions, about four a task -- and each task adds a few hundred bytes to them. A slope
measured while they fill is theirs, not a leak (at 1,000 sessions a second with a submit every
10th, they fill in about a minute).

Cycles (``--cycles N``): N connect/close cycles in one process, the RSS read every
``--report-every``: plain handshakes (alternately to the center and to the worker) except every
``--session-every``-th, a whole ``Executor`` session. Exits non-zero when either process ends
more than ``--tolerance-mb`` above its idle figure.

    python benchmarks/connection_churn.py                           # 1,000/s for 120 s
    python benchmarks/connection_churn.py --rate 500 --duration 20 --procs 2
    python benchmarks/connection_churn.py --session executor --rate 50 --duration 30
    python benchmarks/connection_churn.py --cycles 10000            # the sequential cycles
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import operator
import os
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
from dist_client import Executor
from dist_protocol.comm import connect
from dist_protocol.comm.process import new_event_loop, raise_open_file_limit
from dist_protocol.messages import (ClusterInfo, ClusterInfoReply, KeyInMemory, Session,
                                    SessionReply, Submit, TaskSpec)
from dist_protocol.serialize import deserialize, dumps_function, serialize
from servers import command, rss_mb, start, start_center, stop

# Tasks it takes to fill the servers' bounded histories (see the settling time above).
HISTORY_TASKS = 6_000
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def inc(x: int) -> int:
    return x + 1


def default_settle(args) -> float:
    """Seconds until the bounded histories are full at the rate asked for."""
    if args.session == "executor":
        tasks_per_s = args.rate  # a task each
    else:
        tasks_per_s = args.rate / args.submit_every if args.submit_every else 0.0
    fill = HISTORY_TASKS / tasks_per_s if tasks_per_s else 0.0
    return max(10.0, min(fill, args.duration / 2))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, MB)`` samples, in MB per minute."""
    if len(samples) < 3:
        return float("nan")
    ts, ys = [t for t, _ in samples], [y for _, y in samples]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var if var else float("nan")


# -- one client process of the rate mode ---------------------------------------------------------

class Tally:
    def __init__(self) -> None:
        self.handshake: list[float] = []  # seconds from connecting to a finished handshake
        self.session: list[float] = []  # seconds from connecting to closed
        self.errors: dict[str, int] = {}
        self.behind = 0  # sessions not started: --in-flight were open already

    def error(self, exc: BaseException) -> None:
        what = re.sub(r"\d+", "N", f"{type(exc).__name__}: {exc}")[:160]  # one line a kind
        self.errors[what] = self.errors.get(what, 0) + 1


async def expect(comm, kind: type):
    msg = await comm.recv()
    if not isinstance(msg, kind):
        raise RuntimeError(f"expected {kind.__name__}, got {msg!r}"[:200])
    return msg


async def wire_session(center: str, name: str, number: int, submit: bool,
                       tally: Tally) -> None:
    began = time.perf_counter()
    comm = await connect(center, role="client", name=name)
    shaken = time.perf_counter()
    try:
        comm.send(Session(id=1))
        await expect(comm, SessionReply)
        comm.send(ClusterInfo(id=2))
        await expect(comm, ClusterInfoReply)
        if submit:
            key = f"{name}-inc"
            comm.send(Submit(tasks=[TaskSpec(key=key, function=INC, args=serialize(((number, 1),
                                                                                      {})))],
                             small_values=True))
            while True:
                msg = await comm.recv()
                if isinstance(msg, KeyInMemory) and msg.key == key:
                    break
                if getattr(msg, "key", None) == key:
                    raise RuntimeError(f"the task failed: {msg!r}"[:200])
            if msg.value is None or deserialize(msg.value) != number + 1:
                raise RuntimeError(f"wrong result for inc({number}): {msg!r}"[:200])
    finally:
        comm.close()
        await comm.closed
    tally.handshake.append(shaken - began)
    tally.session.append(time.perf_counter() - began)


INC = dumps_function(operator.add)  # by reference: any worker imports it


def executor_session(center: str, number: int, tally: Tally) -> None:
    began = time.perf_counter()
    with Executor(center) as executor:
        shaken = time.perf_counter()
        assert executor.gather(executor.submit(inc, number, pure=False)) == number + 1
    tally.handshake.append(shaken - began)
    tally.session.append(time.perf_counter() - began)


async def drive(center: str, index: int, args, begin_at: float, tally: Tally) -> int:
    """Sessions on this process's share of the schedule: session ``n`` of the whole run
    starts ``n / rate`` after ``begin_at``; this process takes every ``procs``-th."""
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(args.in_flight) if args.session == "executor" else None
    open_now: set[asyncio.Future] = set()
    number, started = index, 0
    end = begin_at + args.duration
    while True:
        due = begin_at + number / args.rate
        if due >= end:
            break
        wait = due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if len(open_now) >= args.in_flight:
            tally.behind += 1
        else:
            name = f"churn-{index}-{number}"
            if pool is None:
                submit = bool(args.submit_every) and number % args.submit_every == 0
                job = loop.create_task(wire_session(center, name, number, submit, tally))
            else:
                job = loop.run_in_executor(pool, executor_session, center, number, tally)
            open_now.add(job)
            job.add_done_callback(open_now.discard)
            job.add_done_callback(lambda f: f.cancelled() or f.exception() is None
                                  or tally.error(f.exception()))
            started += 1
        number += args.procs
    if open_now:
        await asyncio.wait(set(open_now), timeout=30)
    if pool is not None:
        pool.shutdown(wait=False)
    return started


def client_process(center: str, index: int, args, begin_at: float, out) -> None:
    raise_open_file_limit()
    tally = Tally()
    loop = new_event_loop()
    try:
        started = loop.run_until_complete(drive(center, index, args, begin_at, tally))
    finally:
        loop.close()
    out.put({"started": started, "handshake": tally.handshake, "session": tally.session,
             "errors": tally.errors, "behind": tally.behind,
             "cpu_s": sum(os.times()[:2])})


def run_rate(args, center: str, pids: dict[str, int]) -> int:
    procs = {role: psutil.Process(pid) for role, pid in pids.items()}
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    begin_at = time.time() + 2.0  # every process is running by then
    clients = [ctx.Process(target=client_process, args=(center, i, args, begin_at, out))
               for i in range(args.procs)]
    for proc in clients:
        proc.start()
    idle = {role: p.memory_info().rss / 2**20 for role, p in procs.items()}
    fds_idle = procs["center"].num_fds()
    # What each server holds at rest, to compare with after the run: nothing per session.
    held_idle = {role: (p.num_fds(), p.num_threads()) for role, p in procs.items()}
    # Connections open at once: the center's RSS rises by steps, each to a new peak of them
    # (the allocator keeps what they took for the next peak).
    fds: list[tuple[float, int]] = []
    while time.time() < begin_at:
        time.sleep(0.05)
    cpu0 = {role: p.cpu_times()[:2] for role, p in procs.items()}
    samples: dict[str, list[tuple[float, float]]] = {role: [] for role in procs}
    print(f"{args.procs} client processes, {args.rate:,.0f} {args.session} sessions/s for "
          f"{args.duration:g} s (a submit every {args.submit_every or 'never'}); load "
          f"{os.getloadavg()[0]:.1f}; idle RSS center {idle['center']:.1f} MB, worker "
          f"{idle['worker']:.1f} MB (pids: center {pids['center']}, worker {pids['worker']})",
          flush=True)
    print(f"{'s':>4} {'center MB':>10} {'worker MB':>10} {'center fds':>11} {'load':>5}")
    while time.time() < begin_at + args.duration:
        time.sleep(1.0 - (time.time() - begin_at) % 1.0)
        t = time.time() - begin_at
        for role, p in procs.items():
            samples[role].append((t, p.memory_info().rss / 2**20))
        fds.append((t, procs["center"].num_fds()))
        if round(t) % args.print_every == 0:
            print(f"{t:4.0f} {samples['center'][-1][1]:10.1f} {samples['worker'][-1][1]:10.1f} "
                  f"{procs['center'].num_fds():11d} {os.getloadavg()[0]:5.1f}", flush=True)
    cpu1 = {role: p.cpu_times()[:2] for role, p in procs.items()}
    results = [out.get(timeout=120) for _ in clients]
    for proc in clients:
        proc.join(30)
    time.sleep(1.0)  # the servers see the last closes
    after = {role: p.memory_info().rss / 2**20 for role, p in procs.items()}
    fds_after = procs["center"].num_fds()
    held_after = {role: (p.num_fds(), p.num_threads()) for role, p in procs.items()}
    handshakes = [x for r in results for x in r["handshake"]]
    sessions = [x for r in results for x in r["session"]]
    errors: dict[str, int] = {}
    for r in results:
        for what, n in r["errors"].items():
            errors[what] = errors.get(what, 0) + n
    done, behind = len(sessions), sum(r["behind"] for r in results)
    settled = {role: [(t, mb) for t, mb in s if t >= args.settle] for role, s in samples.items()}
    slopes = {role: slope_per_minute(s) for role, s in settled.items()}
    at_settle = {role: s[0][1] if s else float("nan") for role, s in settled.items()}
    ms = 1000.0
    summary = {
        "session": args.session, "rate_target": args.rate, "duration_s": args.duration,
        "procs": args.procs, "submit_every": args.submit_every,
        "sessions_done": done, "sessions_per_s": done / args.duration,
        "behind": behind, "errors": errors, "error_count": sum(errors.values()),
        "handshake_ms": {"p50": percentile(handshakes, .5) * ms,
                         "p99": percentile(handshakes, .99) * ms,
                         "max": max(handshakes, default=float("nan")) * ms},
        "session_ms": {"p50": percentile(sessions, .5) * ms,
                       "p99": percentile(sessions, .99) * ms},
        "cpu_us_per_session": {role: sum(cpu1[role]) - sum(cpu0[role]) for role in procs},
        "center_system_cpu_share": (cpu1["center"][1] - cpu0["center"][1])
        / max(sum(cpu1["center"]) - sum(cpu0["center"]), 1e-9),
        "client_cpu_us_per_session": sum(r["cpu_s"] for r in results) / max(done, 1) * 1e6,
        "settle_s": args.settle,
        "rss_mb": {role: {"idle": idle[role], "settled": at_settle[role], "after": after[role],
                          "slope_mb_per_min": slopes[role], "samples": samples[role]}
                   for role in procs},
        "center_fds": {"idle": fds_idle, "after": fds_after,
                       "peak": max((n for _, n in fds), default=fds_idle), "samples": fds},
        "fds_threads": {role: {"idle": held_idle[role], "after": held_after[role]}
                        for role in procs},
        "load_average_after": os.getloadavg(),
    }
    for role, seconds in summary["cpu_us_per_session"].items():
        summary["cpu_us_per_session"][role] = seconds / max(done, 1) * 1e6
    print(f"sessions: {done:,} done in {args.duration:g} s = {summary['sessions_per_s']:,.0f}/s "
          f"(target {args.rate:,.0f}/s); behind {behind:,}; errors {summary['error_count']:,}")
    for what, n in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"   {n:6d} x {what}")
    print(f"handshake ms p50 {summary['handshake_ms']['p50']:.2f}  p99 "
          f"{summary['handshake_ms']['p99']:.2f}  max {summary['handshake_ms']['max']:.1f};  "
          f"session ms p50 {summary['session_ms']['p50']:.2f}  p99 "
          f"{summary['session_ms']['p99']:.2f}")
    cpu = summary["cpu_us_per_session"]
    print(f"CPU per session: center {cpu['center']:.0f} µs, worker {cpu['worker']:.0f} µs, "
          f"clients {summary['client_cpu_us_per_session']:.0f} µs (the center's in the kernel: "
          f"{100 * summary['center_system_cpu_share']:.0f}%)")
    for role in procs:
        print(f"RSS {role}: idle {idle[role]:.1f} -> {at_settle[role]:.1f} at {args.settle:.0f} s "
              f"-> after {after[role]:.1f} MB; slope after {args.settle:.0f} s "
              f"{slopes[role]:+.2f} MB/min (limit {args.max_slope:g})")
    print(f"center fds: idle {fds_idle} -> after {fds_after}, peak "
          f"{summary['center_fds']['peak']} (its RSS keeps what a peak took); load average now "
          f"{os.getloadavg()[0]:.1f}")
    for role in procs:
        print(f"{role} descriptors, threads: idle {held_idle[role][0]}, {held_idle[role][1]} "
              f"-> after {held_after[role][0]}, {held_after[role][1]}")
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"churn-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"JSON: {path}")
    flat = all(slope <= args.max_slope for slope in slopes.values())
    return 0 if flat and not errors else 1


# -- the sequential cycles -----------------------------------------------------------------------

async def handshake(address: str) -> None:
    comm = await connect(address, role="client")
    comm.close()
    await comm.closed


def session(address: str, i: int) -> None:
    with Executor(address) as executor:
        assert executor.gather(executor.submit(inc, i, pure=False)) == i + 1


def run_cycles(loop: asyncio.AbstractEventLoop, center: str, worker: str, first: int,
               count: int, session_every: int) -> None:
    for i in range(first, first + count):
        if session_every and i % session_every == 0:
            session(center, i)
        else:
            loop.run_until_complete(handshake(center if i % 2 else worker))


def cycles_mode(args, center: str, worker: str, pids: dict[str, int],
                fresh: dict[str, float]) -> int:
    loop = asyncio.new_event_loop()
    try:
        run_cycles(loop, center, worker, 0, args.warmup, args.session_every)
        time.sleep(1.0)  # let both servers finish with the last close before reading idle RSS
        idle = {role: rss_mb(pid) for role, pid in pids.items()}
        print(f"RSS MB       center   worker   ({args.cycles} cycles, a client session every "
              f"{args.session_every or 'never'}; fresh: center {fresh['center']:.1f}, "
              f"worker {fresh['worker']:.1f})")
        print(f"{'idle':>10} {idle['center']:8.1f} {idle['worker']:8.1f}")
        started = time.monotonic()
        done = 0
        while done < args.cycles:
            step = min(args.report_every, args.cycles - done)
            run_cycles(loop, center, worker, args.warmup + done, step, args.session_every)
            done += step
            now = {role: rss_mb(pid) for role, pid in pids.items()}
            print(f"{done:>10} {now['center']:8.1f} {now['worker']:8.1f}   "
                  f"({done / (time.monotonic() - started):.0f} cycles/s)", flush=True)
        time.sleep(1.0)
        after = {role: rss_mb(pid) for role, pid in pids.items()}
        growth = {role: after[role] - idle[role] for role in pids}
        print(f"{'after':>10} {after['center']:8.1f} {after['worker']:8.1f}")
        print(f"{'growth':>10} {growth['center']:+8.1f} {growth['worker']:+8.1f}   "
              f"(tolerance {args.tolerance_mb:g} MB)")
        return 0 if max(growth.values()) <= args.tolerance_mb else 1
    finally:
        loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rate = parser.add_argument_group("rate mode (the default)")
    rate.add_argument("--rate", type=float, default=1000.0, help="sessions a second, in all")
    rate.add_argument("--duration", type=float, default=120.0, help="seconds")
    rate.add_argument("--procs", type=int, default=4, help="client processes")
    rate.add_argument("--session", choices=("wire", "executor"), default="wire")
    rate.add_argument("--submit-every", type=int, default=10,
                      help="every Nth wire session submits a task and waits for its result "
                           "(0: never)")
    rate.add_argument("--in-flight", type=int, default=200,
                      help="sessions open at once per process at most")
    rate.add_argument("--settle", type=float, default=None,
                      help="seconds left out of the RSS slope (default: until the servers' "
                           "bounded histories are full, 10 s to half the run)")
    rate.add_argument("--max-slope", type=float, default=3.0, help="MB per minute")
    rate.add_argument("--print-every", type=int, default=5, help="seconds between lines")
    cycles = parser.add_argument_group("cycles mode")
    cycles.add_argument("--cycles", type=int, default=0, help="run N sequential cycles instead")
    cycles.add_argument("--session-every", type=int, default=10,
                        help="every Nth cycle is an Executor session (0: handshakes only)")
    cycles.add_argument("--warmup", type=int, default=200)
    cycles.add_argument("--report-every", type=int, default=1_000)
    cycles.add_argument("--tolerance-mb", type=float, default=10.0)
    args = parser.parse_args()
    if args.settle is None:
        args.settle = default_settle(args)

    center_proc, center, _ = start_center()
    worker_proc = None
    code = 1
    try:
        worker_proc, worker = start(command("dworker") + [center, "--nthreads", "1",
                                                          "--no-nanny", "--name", "w1"],
                                    "Start worker at ")
        pids = {"center": center_proc.pid, "worker": worker_proc.pid}
        fresh = {role: rss_mb(pid) for role, pid in pids.items()}
        if args.cycles:
            code = cycles_mode(args, center, worker, pids, fresh)
        else:
            code = run_rate(args, center, pids)
        return code
    finally:
        last = {"worker": stop(worker_proc)} if worker_proc is not None else {}
        last["center"] = stop(center_proc)
        for role, lines in last.items():
            if lines:
                print(f"{role}'s last lines:", *lines[-5:], sep="\n    ")


if __name__ == "__main__":
    sys.exit(main())
