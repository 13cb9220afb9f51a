"""The dashboard's JSON and Prometheus answers, from a CenterState driven by events (no sockets)."""
from __future__ import annotations

import asyncio
import json
import math
import re

import pytest
from dist_center.dashboard import prometheus, views
from dist_center.dashboard.app import Dashboard, TimedCache
from dist_center.dashboard.httpserver import Request, parse_head
from dist_center.events import (ClientConnected, ClientSent, WorkerJoined, WorkerLeft,
                                WorkerSent)
from dist_center.state import CenterState
from dist_protocol.messages import (Cancel, Heartbeat, RegisterWorker, Release, Restart, Submit,
                                    TaskErred, TaskFinished, TaskSpec)

pytestmark = pytest.mark.timeout(30)


class Cluster:
    """A CenterState with one client and two workers; each step re-checks every invariant."""

    def __init__(self) -> None:
        self.state = CenterState()
        self.sent: list = []
        self.step(ClientConnected("client"))
        self.step(WorkerJoined(RegisterWorker(address="tcp-a:1", nthreads=2, name="alpha",
                                              memory_limit=4_000)))
        self.step(WorkerJoined(RegisterWorker(address="tcp-b:2", nthreads=1, name="beta")))

    def step(self, *events) -> None:
        self.sent.extend(self.state.handle(*events))
        self.state.validate()

    def submit(self, *keys: str, deps: dict[str, list[str]] | None = None) -> None:
        deps = deps or {}
        specs = [TaskSpec(key=key, function="math:sqrt", deps=deps.get(key, [])) for key in keys]
        self.step(ClientSent("client", Submit(tasks=specs)))

    def finish(self, key: str, start: float = 100.0, stop: float = 100.5,
               nbytes: int = 10) -> None:
        worker = self.state.tasks[key].processing_on
        self.step(WorkerSent(worker, TaskFinished(key=key, nbytes=nbytes, start=start,
                                                  stop=stop)))

    def fail(self, key: str) -> None:
        worker = self.state.tasks[key].processing_on
        self.step(WorkerSent(worker, TaskErred(key=key, exception_type="ZeroDivisionError",
                                               message="division by zero")))

    def processing(self) -> list[str]:
        return [key for key, ts in self.state.tasks.items() if ts.state == "processing"]


def test_progress_counts_done_even_after_release():
    cluster = Cluster()
    keys = [f"inc-{i:032x}" for i in range(6)]
    cluster.submit(*keys, "double-" + "0" * 32)
    running = cluster.processing()
    assert running, "some tasks go straight to the workers' threads"
    cluster.finish(running[0])
    cluster.fail(running[1])
    rows = {row["prefix"]: row for row in views.progress_rows(cluster.state)}
    inc = rows["inc"]
    assert (inc["done"], inc["erred"], inc["total"]) == (1, 1, 6)
    assert inc["processing"] + inc["waiting"] == 4
    assert inc["memory"] == 1
    assert rows["double"]["total"] == 1

    cluster.step(ClientSent("client", Release(keys=[running[0]])))
    inc = {row["prefix"]: row for row in views.progress_rows(cluster.state)}["inc"]
    assert (inc["done"], inc["memory"], inc["total"]) == (1, 0, 6), "released, still done"

    while cluster.processing():
        cluster.finish(cluster.processing()[0])
    inc = {row["prefix"]: row for row in views.progress_rows(cluster.state)}["inc"]
    assert (inc["done"], inc["erred"], inc["processing"], inc["waiting"]) == (5, 1, 0, 0)
    # Finished prefixes sort after the ones still running.
    cluster.submit("late-" + "1" * 32)
    assert views.progress_rows(cluster.state)[0]["prefix"] == "late"


def test_cancelled_tasks_leave_the_total():
    cluster = Cluster()
    keys = [f"slow-{i:032x}" for i in range(10)]
    cluster.submit(*keys)
    cluster.step(ClientSent("client", Cancel(keys=keys)))
    assert views.progress_rows(cluster.state) == []
    assert views.tasks_by_state(cluster.state) == dict.fromkeys(views.tasks_by_state(
        cluster.state), 0)


def test_counts_survive_dependencies_worker_loss_and_restart():
    cluster = Cluster()
    cluster.submit("load-" + "a" * 32, "load-" + "b" * 32, "total-" + "c" * 32,
                   deps={"total-" + "c" * 32: ["load-" + "a" * 32, "load-" + "b" * 32]})
    for key in cluster.processing():
        cluster.finish(key)
    by_state = views.tasks_by_state(cluster.state)
    assert by_state["processing"] == 1 and by_state["memory"] == 2
    holder = cluster.state.tasks["total-" + "c" * 32].processing_on
    cluster.step(WorkerLeft(holder, "killed"))  # lineage: lost inputs are recomputed
    cluster.step(ClientSent("client", Restart(id=1, timeout=1.0)))
    assert cluster.state.task_counts == {}
    assert sum(views.tasks_by_state(cluster.state).values()) == 0


def test_worker_rows_read_heartbeats_defensively():
    cluster = Cluster()
    cluster.step(WorkerSent("tcp-a:1", Heartbeat(metrics={
        "memory": 1_000, "cpu": 37.5, "executing": 2, "ready": 1, "in_flight": 3})))
    cluster.step(WorkerSent("tcp-b:2", Heartbeat(metrics={
        "memory": "lots", "cpu": float("nan"), "executing": None, "paused": True})))
    alpha, beta = views.worker_rows(cluster.state)
    assert (alpha["name"], alpha["memory"], alpha["memory_limit"], alpha["cpu"]) == (
        "alpha", 1_000, 4_000, 37.5)
    assert (alpha["executing"], alpha["in_flight"], alpha["nthreads"]) == (2, 3, 2)
    assert (beta["memory"], beta["cpu"], beta["executing"], beta["status"]) == (
        0, 0.0, 0, "paused")
    assert (alpha["managed"], alpha["unmanaged"], alpha["spilled"]) == (0, 0, 0)  # not sent
    json.dumps(views.worker_rows(cluster.state), allow_nan=False)


def test_task_stream_since_a_cursor():
    cluster = Cluster()
    cluster.submit(*(f"step-{i:032x}" for i in range(3)))
    for offset, key in enumerate(cluster.processing()):
        cluster.finish(key, start=10.0 + offset, stop=10.5 + offset)
    everything = views.stream_since(cluster.state, 0)
    assert everything["cursor"] == 3 and everything["skipped"] == 0
    assert everything["columns"] == ["prefix", "key", "worker", "start", "stop"]
    assert [row[0] for row in everything["rows"]] == ["step"] * 3
    assert everything["rows"][0][3:] == [10.0, 10.5]
    assert views.stream_since(cluster.state, 3)["rows"] == []
    newest = views.stream_since(cluster.state, 1, limit=1)
    assert (len(newest["rows"]), newest["skipped"]) == (1, 1)
    assert newest["rows"][0] == everything["rows"][-1]
    ahead = views.stream_since(cluster.state, 99)  # a page from before a center restart
    assert len(ahead["rows"]) == 3 and ahead["cursor"] == 3


def test_status_summarises_the_cluster():
    cluster = Cluster()
    cluster.submit("inc-" + "0" * 32)
    status = views.status(cluster.state, address="127.0.0.1:8787", version="1.2.3",
                          started=1_000.0, now=1_010.0)
    assert (status["workers"], status["threads"], status["uptime"]) == (2, 3, 10.0)
    assert status["tasks"]["processing"] == 1
    assert status["memory_limit"] == 4_000 and status["clients"] == 1


# -- Prometheus ---------------------------------------------------------------------------------
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? '
                    r'(\S+)$')


def parse_exposition(text: str) -> dict[str, dict]:
    """A strict reading of the text format: HELP and TYPE before samples, valid lines."""
    families: dict[str, dict] = {}
    current = None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in families, f"family {name} twice"
            current = families[name] = {"samples": {}}
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert current is families[name]
            assert kind in ("gauge", "counter", "histogram")
            current["type"] = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"bad sample line {line!r}"
            name = match.group(1)
            assert current is not None and name.startswith(next(reversed(families))), line
            value = float(match.group(4).replace("+Inf", "inf"))
            current["samples"][name + (match.group(2) or "")] = value
    return families


def test_metrics_text_is_valid_and_counts():
    cluster = Cluster()
    cluster.submit(*(f"inc-{i:032x}" for i in range(4)), 'we"ird\\name-' + "0" * 32)
    while cluster.processing():
        key = cluster.processing()[0]
        if key.startswith("we"):
            cluster.fail(key)
        else:
            cluster.finish(key, start=1.0, stop=1.02)
    cluster.step(WorkerSent("tcp-a:1", Heartbeat(metrics={
        "memory": 5_000, "in_flight": 2, "managed": 3_000, "unmanaged": 2_000,
        "spilled": 7_000, "spilled_disk": 6_000, "spill_written": 9_000, "spill_read": 1})))
    text = prometheus.render(cluster.state, started=123.0)
    families = parse_exposition(text)
    assert families["dist_tasks"]["samples"]['dist_tasks{state="memory"}'] == 4
    finished = families["dist_tasks_finished_total"]
    assert finished["type"] == "counter"
    assert finished["samples"]['dist_tasks_finished_total{prefix="inc"}'] == 4
    erred = families["dist_tasks_erred_total"]["samples"]
    assert erred['dist_tasks_erred_total{prefix="we\\"ird\\\\name"}'] == 1
    histogram = families["dist_task_duration_seconds"]
    assert histogram["type"] == "histogram"
    buckets = [v for k, v in histogram["samples"].items() if "_bucket" in k]
    assert buckets == sorted(buckets) and buckets[-1] == 4
    assert histogram["samples"]['dist_task_duration_seconds_bucket{le="0.01"}'] == 0
    assert histogram["samples"]['dist_task_duration_seconds_bucket{le="0.025"}'] == 4
    assert histogram["samples"]["dist_task_duration_seconds_count"] == 4
    assert math.isclose(histogram["samples"]["dist_task_duration_seconds_sum"], 0.08)
    assert families["dist_workers"]["samples"]['dist_workers{status="running"}'] == 2
    assert families["dist_transfers_in_flight"]["samples"]["dist_transfers_in_flight"] == 2
    assert families["dist_bytes_held"]["samples"]["dist_bytes_held"] == 40
    entries = families["dist_center_entries"]["samples"]
    assert entries['dist_center_entries{table="primitives"}'] == 0
    assert entries['dist_center_entries{table="coordination_waits"}'] == 0
    memory = families["dist_worker_memory_bytes"]["samples"]
    assert memory['dist_worker_memory_bytes{worker="tcp-a:1",name="alpha"}'] == 5_000
    alpha = '{worker="tcp-a:1",name="alpha"}'
    for family, value in (("dist_worker_memory_managed_bytes", 3_000),
                          ("dist_worker_memory_unmanaged_bytes", 2_000),
                          ("dist_worker_memory_spilled_bytes", 7_000),
                          ("dist_worker_spilled_disk_bytes", 6_000),
                          ("dist_worker_spill_written_bytes_total", 9_000),
                          ("dist_worker_spill_read_bytes_total", 1)):
        assert families[family]["samples"][family + alpha] == value, family
    assert families["dist_messages_handled_total"]["samples"][
        "dist_messages_handled_total"] == cluster.state.messages_handled


# -- routes and caching -------------------------------------------------------------------------
class FakeCenter:
    def __init__(self, state: CenterState):
        self.state = state
        self.address = self.bound_address = "127.0.0.1:8787"
        self.started = 50.0
        self.worker_entries: list[dict] = []

    async def story(self, keys: list[str]) -> list[dict]:
        """As the server's: the center's log, with the workers' entries it would gather."""
        return [{"key": key, "start": start, "finish": finish, "stimulus_id": sid,
                 "time": when, "worker": ""}
                for key, start, finish, sid, when in self.state.story(*keys)
                ] + [entry for entry in self.worker_entries if entry["key"] in keys]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def get(dashboard: Dashboard, target: str):
    return dashboard.handle(parse_head(f"GET {target} HTTP/1.1\r\nHost: x".encode()))


def test_routes_answer_json_text_and_the_page():
    cluster = Cluster()
    dashboard = Dashboard(FakeCenter(cluster.state), wall_clock=lambda: 60.0)
    page = get(dashboard, "/")
    assert page.status == 200 and page.content_type.startswith("text/html")
    assert b"/static/dashboard.js" in page.body
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for name in ("dashboard.js", "dashboard.css"):
        assert get(dashboard, f"/static/{name}").status == 200
    for target in ("/static/../app.py", "/static/%2e%2e/app.py", "/nope", "/static/"):
        assert get(dashboard, target).status == 404, target
    status = json.loads(get(dashboard, "/api/status").body)
    assert status["uptime"] == 10.0 and status["workers"] == 2
    workers = json.loads(get(dashboard, "/api/workers").body)["workers"]
    assert [w["name"] for w in workers] == ["alpha", "beta"]
    tasks = json.loads(get(dashboard, "/api/tasks?since=abc").body)
    assert set(tasks) == {"now", "states", "progress", "stream"}
    metrics = get(dashboard, "/metrics")
    assert metrics.content_type == prometheus.CONTENT_TYPE and b"dist_workers" in metrics.body
    assert get(dashboard, "/health").body == b"ok\n"


def test_answers_are_cached_briefly_but_the_stream_is_fresh():
    cluster = Cluster()
    clock = FakeClock()
    dashboard = Dashboard(FakeCenter(cluster.state), cache=TimedCache(0.25, clock))
    cluster.submit("inc-" + "0" * 32)
    assert json.loads(get(dashboard, "/api/tasks").body)["states"]["processing"] == 1
    cluster.finish("inc-" + "0" * 32)
    cached = json.loads(get(dashboard, "/api/tasks").body)
    assert cached["states"]["processing"] == 1, "within the TTL: the cached summary"
    assert len(cached["stream"]["rows"]) == 1, "the stream since a cursor is never stale"
    clock.now = 0.3
    assert json.loads(get(dashboard, "/api/tasks").body)["states"]["memory"] == 1


def test_request_heads_are_parsed_strictly():
    request = parse_head(b"GET /api/tasks?since=12 HTTP/1.1\r\nConnection: close")
    assert isinstance(request, Request)
    assert (request.path, request.query_int("since", 0)) == ("/api/tasks", 12)
    assert request.headers["connection"] == "close"
    from dist_center.dashboard.httpserver import BadRequest
    for head in (b"GET /", b"GET / HTTP/2.0", b"GET / HTTP/1.1\r\nno colon here"):
        with pytest.raises(BadRequest):
            parse_head(head)


@pytest.mark.parametrize("key, prefix", [
    ("inc-79963f7e613e5e55838d2232920baed2", "inc"),
    ("read_csv-abc", "read_csv"),
    ("('sum-aggregate-5f3a', 0)", "sum-aggregate"),  # a dask tuple key, as the client sends it
    ('("x-1", 2, 3)', "x"),
    ("plain", "plain"),
    ("('", "('"),
])
def test_key_prefix_names_the_function(key, prefix):
    from dist_center.state import key_prefix
    assert key_prefix(key) == prefix


def test_a_key_page_shows_its_record_and_story_escaped():
    cluster = Cluster()
    cluster.state.clock = lambda: 3600.25
    cluster.submit("x", "<b>y", deps={"<b>y": ["x"]})
    cluster.finish("x")
    center = FakeCenter(cluster.state)
    center.worker_entries = [{"key": "<b>y", "start": "ready", "finish": "executing",
                              "stimulus_id": "compute-task-3", "time": 3600.5,
                              "worker": "tcp-a:1"}]
    dashboard = Dashboard(center)

    page = asyncio.run(get(dashboard, "/key?key=%3Cb%3Ey"))
    assert page.status == 200 and page.content_type.startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    body = page.body.decode()
    assert "<b>y" not in body and "&lt;b&gt;y" in body  # user data never becomes markup
    assert '<a href="/key?key=x">x</a>' in body  # its input links to its own page
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", body)
    assert rows == [("01:00:00.250", "center", "released", "waiting"),
                    ("01:00:00.250", "center", "waiting", "processing"),
                    ("01:00:00.500", "tcp-a:1", "ready", "executing")]

    story = json.loads(asyncio.run(get(dashboard, "/api/story?key=x")).body)
    assert story["task"]["state"] == "memory" and story["task"]["who_has"]
    assert [e["finish"] for e in story["entries"]] == ["waiting", "processing", "memory"]
    assert asyncio.run(get(dashboard, "/key")).status == 400
    unknown = asyncio.run(get(dashboard, "/key?key=never")).body.decode()
    assert "does not know this key" in unknown and "No entries" in unknown


def test_tasks_waiting_ahead_on_a_worker_are_shown_waiting_not_processing():
    # A chain sent to a worker that takes tasks ahead: one link runs, the next ones wait
    # there for it. They hold no thread: the dashboard counts them apart, as waiting.
    cluster = Cluster()
    cluster.step(WorkerJoined(RegisterWorker(address="tcp-c:3", nthreads=1, name="gamma"),
                              features=frozenset({"dispatch-ahead"})))
    cluster.step(WorkerLeft("tcp-a:1", "gone", graceful=True),
                 WorkerLeft("tcp-b:2", "gone", graceful=True))
    keys = [f"inc-{i:032x}" for i in range(12)]
    cluster.submit(*keys, deps={key: [before] for before, key in zip(keys, keys[1:])})
    assert len(cluster.state.workers["tcp-c:3"].ahead) == 8

    [row] = views.worker_rows(cluster.state)
    assert (row["processing"], row["ahead"]) == (1, 8)
    status = views.status(cluster.state, address="x", version="1", started=0.0, now=1.0)
    assert (status["tasks"]["processing"], status["tasks"]["ahead"]) == (1, 8)
    assert status["tasks"]["waiting"] == 3
    [progress] = views.progress_rows(cluster.state)
    assert (progress["processing"], progress["waiting"], progress["ahead"]) == (1, 11, 8)
    assert progress["total"] == 12
    metrics = parse_exposition(prometheus.render(cluster.state, started=0.0))
    assert metrics["dist_worker_tasks_ahead"]["samples"] == {
        'dist_worker_tasks_ahead{worker="tcp-c:3",name="gamma"}': 8.0}
    assert metrics["dist_worker_tasks_processing"]["samples"] == {
        'dist_worker_tasks_processing{worker="tcp-c:3",name="gamma"}': 1.0}
    assert metrics["dist_tasks"]["samples"]['dist_tasks{state="ahead"}'] == 8.0

    cluster.finish(keys[0])  # the next link runs; one more is sent ahead
    [progress] = views.progress_rows(cluster.state)
    assert (progress["done"], progress["processing"], progress["ahead"]) == (1, 1, 8)
    cluster.fail(keys[1])  # and the links waiting for it are taken back
    [row] = views.worker_rows(cluster.state)
    assert (row["processing"], row["ahead"]) == (0, 0)
    assert views.status(cluster.state, address="x", version="1", started=0.0,
                        now=1.0)["tasks"]["ahead"] == 0
