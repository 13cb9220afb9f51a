"""What PROTOCOL.md says of a client's tasks and connection beyond the messages' shapes, held
against real dcenter/dworker processes by the client written from spec/ alone: wanting a key is
a set, ids are the requester's, order within a connection, retries, priority and resources,
many tasks in several submits, unknown fields, the worker maps' types, keepalive, large values
against a receiver's limits, and that there is no gather through the center.
"""
from __future__ import annotations

import ast
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from . import spec_reader_client
from .spec_reader_client import (WORKER_MAP, SpecClient, SpecError, check_worker_map,
                                 pack_value, task)

TOKEN = "a token the semantics' cluster shares"
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 2, "env": {"DIST_TOKEN": TOKEN}}
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def center(module_cluster) -> str:
    return module_cluster.center.address


@pytest.fixture
def client(center):
    opened = SpecClient(center, TOKEN)
    yield opened
    opened.close()


def test_the_spec_client_uses_the_standard_library_and_msgpack_alone():
    """It is a client written from spec/ only: nothing of dist's packages."""
    source = Path(spec_reader_client.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - sys.stdlib_module_names == {"msgpack"}, imported


def test_wanting_a_key_is_a_set_and_closing_the_connection_lets_go(client, center, wait_until):
    """PROTOCOL.md, Task lifecycle (Release)."""
    client.submit([task("sem-twice", "operator:neg", 1)])
    client.wait("sem-twice")
    client.submit([task("sem-twice", "operator:neg", 1)])  # answered at once: it is settled
    assert client.wait("sem-twice")["op"] == "key-in-memory"
    assert client.who_has(["sem-twice"])["sem-twice"]
    client.release(["sem-twice"])  # once is enough: the center kept no count
    assert client.who_has(["sem-twice"]) == {"sem-twice": []}
    client.release(["sem-never-known", "sem-twice"])  # not wanted: nothing, and no answer
    assert client.who_has(["sem-never-known"]) == {"sem-never-known": []}
    other = SpecClient(center, TOKEN)
    other.submit([task("sem-closed", "operator:neg", 2)])
    assert other.wait("sem-closed")["op"] == "key-in-memory"
    other.close()
    wait_until(lambda: client.who_has(["sem-closed"]) == {"sem-closed": []},
               what="the center to let go of a closed connection's keys")


def test_ids_are_the_requesters_and_a_connection_is_handled_in_order(client):
    """PROTOCOL.md, Message encoding (ids) and Framing (Order)."""
    for request_id in (-5, 0, 2**63 - 1, 2**64 - 1):
        client.center.send([{"op": "who-has", "id": request_id, "keys": []}])
        [reply], _ = client.center.receive()
        assert (reply["op"], reply["id"]) == ("who-has-reply", request_id)
    # one id twice: two replies that both carry it, in the order asked
    client.center.send([{"op": "submit", "tasks": [{"key": "sem-order",
                                                    "function": "time:time"}]},
                        {"op": "who-has", "id": 7, "keys": ["sem-order"]},
                        {"op": "release", "keys": ["sem-order"]},
                        {"op": "who-has", "id": 7, "keys": ["sem-order"]}])
    replies = []
    while len(replies) < 2:
        replies += [m for m in client.center.receive()[0] if m["op"] == "who-has-reply"]
    assert [r["id"] for r in replies] == [7, 7]
    # the second who-has was handled after the release, whatever the task did meanwhile
    assert replies[1]["who_has"] == {"sem-order": []}


def test_retries_run_a_task_again_and_clients_hear_only_the_last_run(client, tmp_path):
    """PROTOCOL.md, Tasks (retries): a command that fails until its third run."""
    runs, failing = tmp_path / "runs", tmp_path / "failing"
    third_run_passes = f'echo run >> "{runs}"; [ "$(wc -l < "{runs}")" -ge 3 ]'
    passes = task("sem-retried", "subprocess:check_call", ["sh", "-c", third_run_passes])
    passes["retries"] = 2
    fails = task("sem-fails", "subprocess:check_call",
                 ["sh", "-c", f'echo run >> "{failing}"; exit 3'])
    fails["retries"] = 1
    client.submit([passes, fails])
    assert client.wait("sem-retried")["op"] == "key-in-memory"
    assert runs.read_text().split() == ["run"] * 3
    assert [m["op"] for m in client.news if m["key"] == "sem-retried"] == ["key-in-memory"]
    erred = client.wait("sem-fails")
    assert (erred["op"], erred["exception_type"]) == ("task-erred", "CalledProcessError")
    assert failing.read_text().split() == ["run"] * 2  # retries + 1 runs, no more
    assert [m["op"] for m in client.news if m["key"] == "sem-fails"] == ["task-erred"]
    client.release(["sem-retried", "sem-fails"])


def test_deps_the_arguments_do_not_reference_order_the_tasks(client):
    """PROTOCOL.md, Tasks (deps): a dep only waited for, and an input's error passed on."""
    client.submit([task("sem-earlier", "time:time_ns"),
                   task("sem-later", "time:time_ns", deps=["sem-earlier"]),
                   task("sem-domain", "math:sqrt", -1.0),
                   task("sem-behind-error", "time:time_ns", deps=["sem-domain"])])
    values = client.gather(["sem-earlier", "sem-later"])
    assert values["sem-later"] > values["sem-earlier"]
    erred = client.wait("sem-behind-error")
    assert (erred["op"], erred["exception_type"]) == ("task-erred", "ValueError")
    client.release(["sem-earlier", "sem-later", "sem-domain", "sem-behind-error"])


def test_a_connection_to_a_worker_carries_many_requests(client):
    """PROTOCOL.md, Transport: requests one after another and several in one batch."""
    [holder] = client.scatter({"sem-held": 11})["sem-held"]
    link = client.worker(holder)
    try:
        link.send([{"op": "get-data", "id": 1, "keys": ["sem-held"], "serializers": ["msgpack"]},
                   {"op": "get-data", "id": 2, "keys": ["sem-absent"]}])
        replies = []
        while len(replies) < 2:
            replies += link.receive()[0]
        by_id = {reply["id"]: reply for reply in replies}
        assert set(by_id[1]["data"]) == {"sem-held"}
        assert by_id[2]["missing"] == ["sem-absent"]
        link.send([{"op": "get-data", "id": 3, "keys": ["sem-held"], "serializers": ["msgpack"]}])
        [again], frames = link.receive()
        assert again["id"] == 3 and frames[again["data"]["sem-held"]["frames"][0]] == b"\x0b"
    finally:
        link.close()
    client.release(["sem-held"])


def test_results_as_msgpack_are_what_the_spec_lists(client):
    """PROTOCOL.md, Serializers: a Python worker's values as msgpack, and those it cannot
    write, named in the reply's errors."""
    client.submit([task("sem-int-keys", "builtins:dict", [[1, "a"], [2, "b"]]),
                   task("sem-bytes", "builtins:bytes", [1, 2]),
                   task("sem-bool", "builtins:bool", 1),
                   task("sem-64-bits", "builtins:int", str(2**64 - 1)),
                   task("sem-65-bits", "builtins:pow", 2, 65),
                   task("sem-datetime", "datetime:datetime.fromtimestamp", 0, tz=None)])
    readable = client.gather(["sem-int-keys", "sem-bytes", "sem-bool"])
    assert readable == {"sem-int-keys": {1: "a", 2: "b"}, "sem-bytes": b"\x01\x02",
                        "sem-bool": True}
    assert type(readable["sem-bool"]) is bool
    for key in ("sem-64-bits", "sem-65-bits", "sem-datetime"):
        assert client.wait(key)["op"] == "key-in-memory"
    by_holder = {}
    for key, holders in client.who_has(["sem-64-bits", "sem-65-bits", "sem-datetime"]).items():
        by_holder.setdefault(holders[0], []).append(key)
    errors, data = {}, {}
    for address, keys in by_holder.items():
        reply, frames = client.get_data(address, keys)
        errors.update(reply["errors"])
        data.update(reply["data"])
    assert set(errors) == {"sem-65-bits", "sem-datetime"}, errors
    assert set(data) == {"sem-64-bits"}
    client.release(["sem-int-keys", "sem-bytes", "sem-bool", "sem-64-bits", "sem-65-bits",
                    "sem-datetime"])


def test_empty_restrictions_restrict_nothing(client):
    """PROTOCOL.md, Tasks (workers, resources): [] and {} are as absent."""
    anywhere = task("sem-no-workers", "operator:neg", 1)
    anywhere["workers"] = []
    no_amounts = task("sem-no-resources", "operator:neg", 2)
    no_amounts["resources"] = {}
    client.submit([anywhere, no_amounts])
    assert client.gather(["sem-no-workers", "sem-no-resources"]) == {
        "sem-no-workers": -1, "sem-no-resources": -2}
    client.release(["sem-no-workers", "sem-no-resources"])


def test_many_tasks_go_in_several_submits_each_within_the_frame_limits(client):
    """PROTOCOL.md, Tasks (Many tasks): one frame of arguments per task; a shared frame."""
    keys = []
    for part in range(3):
        batch = [task(f"sem-map-{part}-{i}", "operator:neg", part * 1000 + i)
                 for i in range(1000)]
        keys += client.submit(batch)
    shared = [{"key": f"sem-shared-{i}", "function": "operator:neg",
               "args": {"serializer": "msgpack", "frames": [1]}} for i in range(100)]
    client.center.send([{"op": "submit", "tasks": shared}], [pack_value([[5], {}])])
    values = client.gather(keys + [spec["key"] for spec in shared])
    assert sum(values[k] for k in keys) == -sum(range(3000))
    assert {values[spec["key"]] for spec in shared} == {-5}
    client.release(keys + [spec["key"] for spec in shared])


def test_unknown_fields_are_ignored_in_messages_records_and_payloads(client):
    """PROTOCOL.md, Compatibility: a newer peer's extra fields are not an error."""
    frame0 = msgpack.packb([{"op": "submit", "from-the-future": [1, 2], "tasks": [{
        "key": "sem-newer", "function": "operator:neg", "colour": "blue",
        "args": {"serializer": "msgpack", "frames": [1], "checksum": 12}}]}])
    client.center.send_raw([frame0, pack_value([[3], {}])])
    assert client.gather(["sem-newer"]) == {"sem-newer": -3}
    client.release(["sem-newer"])


def test_worker_maps_carry_the_keys_and_types_the_spec_gives(center, module_cluster):
    """PROTOCOL.md, Worker maps: cluster-info-reply's maps, worker-list's and worker-added's
    hold the table's keys, no others, each of its type."""
    assert {"address", "nthreads", "memory_limit", "status"} <= WORKER_MAP.keys()
    watcher = SpecClient(center, TOKEN, features=["worker-events"])
    try:
        [listed], _ = watcher.center.receive()
        assert listed["op"] == "worker-list" and len(listed["workers"]) >= 2
        for worker in listed["workers"]:
            check_worker_map(worker, events=True)
            assert set(worker) == {k for k, row in WORKER_MAP.items() if row[2]}, worker
        reply, _ = watcher.request({"op": "cluster-info"})
        for worker in reply["workers"]:
            check_worker_map(worker, events=False)
            assert set(worker) == set(WORKER_MAP), set(worker) ^ set(WORKER_MAP)
        by_address = {w["address"]: w for w in reply["workers"]}
        for server in module_cluster.workers:
            row = by_address[server.address]
            assert (row["name"], row["nthreads"], row["status"]) == (server.name, 2, "running")
    finally:
        watcher.close()


def test_no_gather_through_the_center(center):
    """PROTOCOL.md, Task lifecycle (Gather): get-data to the center costs that connection."""
    asker = SpecClient(center, TOKEN)
    try:
        frame0 = msgpack.packb([{"op": "get-data", "id": 1, "keys": ["x"]}])
        asker.center.send_raw([frame0])
        with pytest.raises(SpecError) as refused:
            asker.center.receive()
        assert refused.value.by_peer and refused.value.code == "invalid-message"
    finally:
        asker.close()
    fresh = SpecClient(center, TOKEN)
    try:
        assert fresh.who_has(["x"]) == {"x": []}  # the center goes on
    finally:
        fresh.close()


def test_the_center_probes_an_idle_client_connection(client, center, wait_until):
    """PROTOCOL.md, Liveness (Peers that vanish): TCP keepalive on the center's side."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("ss (iproute2) shows a socket's keepalive timer")
    host, port = center.rsplit(":", 1)
    mine = client.center.sock.getsockname()[1]

    def timer() -> str:
        # While data it sent waits for our acknowledgement the kernel shows the retransmit
        # timer instead (``on``); once all is acknowledged, the keepalive one.
        return subprocess.run([ss, "-tnoH", "state", "established",
                               f"( sport = :{port} and dport = :{mine} )"],
                              capture_output=True, text=True, timeout=10).stdout
    wait_until(lambda: "timer:(keepalive" in timer(), what="the center's keepalive timer")
    assert client.center.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)


def test_resources_wait_for_a_worker_that_has_them_and_priority_orders_starts(processes):
    """PROTOCOL.md, Tasks (resources, priority), and Limits (Large values): a task asking for
    a resource no worker has waits, not errs, until one joins; there, tasks that each take
    its one slot start highest priority first, the earlier of equals first. A value larger
    than that worker's frame limit costs the sender its connection, and the worker goes on."""
    env = {"DIST_TOKEN": TOKEN}
    center = processes.start_center(env=env)
    processes.start_worker(center.address, nthreads=2, env=env)
    client = SpecClient(center.address, TOKEN)
    try:
        def one_slot(key, function, *args, priority=0):
            spec = task(key, function, *args)
            spec["resources"], spec["priority"] = {"slot": 1}, priority
            return spec

        client.submit([one_slot("sem-slot-first", "operator:neg", 1)])
        # handled in order: the center had the task when it answered, and did not err it
        assert client.request({"op": "cluster-info"})[0]["workers"]
        assert "sem-slot-first" not in client.outcomes
        slotted = processes.start_worker(center.address, "--resources", "slot=1",
                                         "--max-frame-bytes", "1000000", nthreads=2, env=env)
        first = client.wait("sem-slot-first")
        assert first["op"] == "key-in-memory" and first["workers"] == [slotted.address]
        order = [("sem-p-block", 100), ("sem-p-a", 0), ("sem-p-b", 10), ("sem-p-c", -5),
                 ("sem-p-d", 5), ("sem-p-e", 0)]
        client.submit([one_slot("sem-p-block", "time:sleep", 0.2, priority=100)]
                      + [one_slot(key, "operator:neg", 1, priority=p) for key, p in order[1:]])
        for key, _ in order:
            assert client.wait(key)["op"] == "key-in-memory"
        settled = [m["key"] for m in client.news if m["key"].startswith("sem-p-")]
        assert settled == ["sem-p-block", "sem-p-b", "sem-p-d", "sem-p-a", "sem-p-e",
                           "sem-p-c"], settled
        link = client.worker(slotted.address)
        link.send([{"op": "put-data", "id": 1, "data": {"sem-big": {
            "serializer": "bytes", "frames": [1]}}}], [b"x" * 1_000_001])
        with pytest.raises(SpecError) as refused:
            link.receive()
        assert refused.value.by_peer and refused.value.code == "limit-exceeded"
        link.close()
        assert client.get_data(slotted.address, ["sem-slot-first"])[0]["data"]
    finally:
        client.close()


def test_a_batch_header_over_the_frame_count_limit_is_refused_before_its_frames(center):
    """PROTOCOL.md, Tasks (Many tasks) and Limits: a submit of more frames than the limit
    is refused from its header alone."""
    asker = SpecClient(center, TOKEN)
    try:
        # the header's count alone: none of the frames need be sent
        asker.center.sock.sendall((100_001).to_bytes(8, "little"))
        with pytest.raises(SpecError) as refused:
            asker.center.receive()
        assert refused.value.code == "limit-exceeded"
    finally:
        asker.close()
