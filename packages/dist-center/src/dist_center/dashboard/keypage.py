"""A key's page: what the center knows of it now, and its story across the center and the
workers that touched it (no I/O: the story is gathered by the server and passed in)."""
from __future__ import annotations

import datetime
from html import escape
from typing import Any

from ..records import CenterView

STORY_COLUMNS = ("time", "where", "start", "finish", "stimulus_id")


def task_record(state: CenterView, key: str) -> dict[str, Any] | None:
    """The center's record of ``key``, as JSON; None when it does not know the key."""
    ts = state.tasks.get(key)
    if ts is None:
        return None
    return {"key": key, "state": ts.state, "prefix": ts.prefix,
            "who_has": sorted(ts.who_has), "processing_on": ts.processing_on,
            "nbytes": ts.nbytes, "type": ts.type, "deps": list(ts.deps),
            "dependents": len(ts.dependents), "wanted_by": len(ts.wanted_by),
            "waiting_on": sorted(ts.waiting_on), "retries_left": ts.retries_left,
            "died_on": list(ts.died_on),
            "error": (None if ts.error is None
                      else f"{ts.error.exception_type}: {ts.error.message}"),
            "lost": ts.lost_message or None}


def _when(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%H:%M:%S.%f")[:-3]


def render(key: str, record: dict[str, Any] | None, entries: list[dict[str, Any]]) -> str:
    """The HTML page. Keys and messages are user data: everything shown is escaped."""
    rows = []
    if record is None:
        rows.append('<p class="muted">The center does not know this key now (never '
                    "submitted, or released).</p>")
    else:
        rows.append("<dl>")
        for name, value in record.items():
            if value in (None, [], "") or name == "key":
                continue
            if name == "deps":
                value = " ".join(f'<a href="/key?key={escape(dep, quote=True)}">'
                                 f"{escape(dep)}</a>" for dep in value)
            else:
                value = escape(", ".join(map(str, value)) if isinstance(value, list)
                               else str(value))
            rows.append(f"<div><dt>{escape(name)}</dt><dd>{value}</dd></div>")
        rows.append("</dl>")
    head = "".join(f"<th>{name}</th>" for name in STORY_COLUMNS)
    story = []
    for entry in entries:
        where = entry.get("worker") or "center"
        cells = (_when(float(entry.get("time", 0))), where, entry.get("start", ""),
                 entry.get("finish", ""), entry.get("stimulus_id", ""))
        story.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    if not story:
        story.append(f'<tr><td colspan="{len(STORY_COLUMNS)}" class="muted">No entries: the '
                     "logs are bounded, and keep only recent moves.</td></tr>")
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{escape(key)} · dist</title>
  <link rel="stylesheet" href="/static/dashboard.css">
</head>
<body>
  <header><h1><a href="/">dist</a></h1><span class="muted">key</span>
  <code id="key">{escape(key)}</code></header>
  <main>
    <section id="record"><h2>Now</h2>{"".join(rows)}</section>
    <section id="story"><h2>Story <span class="muted">(center and workers, UTC)</span></h2>
      <table><thead><tr>{head}</tr></thead><tbody>{"".join(story)}</tbody></table>
    </section>
  </main>
</body>
</html>
"""
