"""The results table and the target ratios, from the JSON document run.py builds."""
from __future__ import annotations

MB = 1e6


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def workload(doc, system, key):
    """The workload's result dict, or None."""
    run = doc["systems"].get(system) or {}
    result = (run.get("workloads") or {}).get(key)
    return result if result and result.get("status") == "ok" else None


def value(doc, system, key):
    result = workload(doc, system, key)
    return None if result is None else result["value"]


def cell(doc, system, key) -> str:
    """A value, or why there is none: missing / timeout / error / not run."""
    run = doc["systems"].get(system)
    if run is None:
        return "not run"
    if run.get("status") == "missing":
        return "missing"
    result = (run.get("workloads") or {}).get(key)
    if result is None:
        return "error" if run.get("status") == "error" else "not run"
    if result.get("status") != "ok":
        return result["status"]
    text = fmt(result["value"])
    # A number obtained the wrong way is flagged, not passed off.
    if result.get("ran_where_data_is") is False or result.get("ran_on_pinned_worker") is False:
        text += " (!)"
    return text


def memory(doc, system, when, role):
    run = doc["systems"].get(system) or {}
    found = (run.get("memory") or {}).get(when)
    return None if not found or role not in found else found[role]


def memory_cell(doc, system, when, role) -> str:
    run = doc["systems"].get(system)
    if run is None:
        return "not run"
    if run.get("status") == "missing":
        return "missing"
    found = memory(doc, system, when, role)
    return "-" if found is None else fmt(found)


def rows(doc):
    sizes = doc["sizes"]
    raw = doc.get("raw_socket") or {}
    raw_ok = raw.get("status") == "ok"
    n_small, n_large = sizes["throughput_small"], sizes["throughput_large"]
    yield ("start-up to first result (s)", "startup", None)
    yield (f"latency, {sizes['latency']} x submit().result() (ms)", "latency",
           raw["round_trip_us"] / 1e3 if raw_ok else None)
    yield (f"throughput, N={n_small:,} (tasks/s)", "throughput_small", None)
    yield (f"throughput, N={n_large:,} (tasks/s)", "throughput_large", None)
    yield (f"chain of {sizes['chain']:,} (tasks/s)", "chain", None)
    yield (f"fan-in, {sizes['fanin']:,} + sum (s)", "fanin", None)
    yield (f"scatter {sizes['scatter'] / MB:.0f} MB + np.sum (s)", "scatter", None)
    yield (f"worker-to-worker {sizes['w2w'] / MB:.0f} MB (MB/s)", "w2w",
           raw["fresh_buffer_mb_s"] if raw_ok else raw.get("status", "-"))


def render(doc, systems) -> str:
    header = ["", *systems, "raw socket"]
    table = []
    for label, key, raw in rows(doc):
        table.append([label, *(cell(doc, s, key) for s in systems), fmt(raw)])
    table.append(["  raw socket beside each move (MB/s)",
                  *(fmt(workload(doc, s, "w2w")["raw_socket_mb_s"])
                    if workload(doc, s, "w2w") else cell(doc, s, "w2w") for s in systems), ""])
    n_large = doc["sizes"]["throughput_large"]
    for role in ("center", "workers"):
        table.append([f"{role} RSS idle (MB)",
                      *(memory_cell(doc, s, "idle", role) for s in systems), ""])
        table.append([f"{role} RSS after N={n_large:,} released (MB)",
                      *(memory_cell(doc, s, "after_throughput_large", role) for s in systems),
                      ""])
    raw = doc.get("raw_socket") or {}
    if raw.get("status") == "ok":
        table.append(["raw socket, reused receive buffer (MB/s)", *[""] * len(systems),
                      fmt(raw["reused_buffer_mb_s"])])
    out = [grid(header, table)]

    notes = []
    for system in systems:
        run = doc["systems"].get(system) or {}
        if run.get("status") in ("missing", "error", "interrupted"):
            notes.append(f"{system}: {run['status']}: {run.get('reason', '')}".rstrip(": "))
        for key, result in (run.get("workloads") or {}).items():
            if result.get("status") != "ok":
                notes.append(f"{system} {key}: {result['status']}: {result.get('reason')}")
            elif result.get("ran_where_data_is") is False:
                notes.append(f"{system} {key}: (!) the task did not run where the data was")
            elif result.get("ran_on_pinned_worker") is False:
                notes.append(f"{system} {key}: (!) the task did not run on the pinned worker")
            elif key == "scatter" and result.get("ran_where_data_is") is None:
                notes.append(f"{system} scatter: where the data was could not be checked "
                             "(no who_has)")
        version = run.get("version")
        if version:
            notes.append(f"{system} {version}")
        load = run.get("load_average_before")
        cpus = (doc.get("machine") or {}).get("cpus") or 1
        if load and load[0] > cpus / 2:
            notes.append(f"{system}: load average {load[0]:.1f} on {cpus} CPUs before its run: "
                         "other work was competing, expect noisy figures")
    if doc.get("quick"):
        notes.append("--quick: smaller task counts; the targets are defined for the full sizes")
    if notes:
        out.append("\n".join("  " + n for n in notes))

    out.append(grid(["target", "measured", "needed", "status"],
                    [[t["target"], t["measured"], t["needed"], t["status"]]
                     for t in doc.get("targets", [])]))
    return "\n\n".join(out)


def grid(header, table) -> str:
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header, *table]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def targets(doc) -> list[dict]:
    """Issue 7's targets for dist, as ratios measured in this one run."""
    sizes = doc["sizes"]
    n_small, n_large = sizes["throughput_small"], sizes["throughput_large"]
    raw = doc.get("raw_socket") or {}
    # The raw transfers interleaved with dist's own moves saw the same load; the suite-level
    # figure is the fallback.
    raw_rate = (workload(doc, "dist", "w2w") or {}).get("raw_socket_mb_s")
    if raw_rate is None and raw.get("status") == "ok":
        raw_rate = raw.get("fresh_buffer_mb_s")
    dist = lambda key: value(doc, "dist", key)

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    idle = memory(doc, "dist", "idle", "center")
    after = memory(doc, "dist", "after_throughput_large", "center")
    found = [
        (f"throughput N={n_small:,} vs dask", ratio(dist("throughput_small"),
                                                    value(doc, "dask", "throughput_small")),
         15.0, "x", ">="),
        (f"throughput N={n_small:,} vs ray", ratio(dist("throughput_small"),
                                                   value(doc, "ray", "throughput_small")),
         5.0, "x", ">="),
        (f"throughput N={n_large:,} / N={n_small:,}", ratio(dist("throughput_large"),
                                                             dist("throughput_small")),
         0.75, "x", ">="),
        ("latency: dask / dist", ratio(value(doc, "dask", "latency"), dist("latency")),
         20.0, "x", ">="),
        ("chain vs dask", ratio(dist("chain"), value(doc, "dask", "chain")), 10.0, "x", ">="),
        ("worker-to-worker / raw socket", ratio(dist("w2w"), raw_rate), 0.70, "x", ">="),
        (f"center RSS after N={n_large:,} - idle (MB)",
         None if idle is None or after is None else after - idle, 20.0, " MB", "<="),
    ]
    out = []
    for name, measured, needed, unit, op in found:
        if measured is None:
            status = "n/a"
        else:
            met = measured >= needed if op == ">=" else measured <= needed
            status = "met" if met else "NOT MET"
        out.append({"target": name, "measured": "-" if measured is None else
                    f"{measured:.2f}{unit}", "needed": f"{op} {needed:g}{unit}",
                    "status": status, "value": measured})
    return out
