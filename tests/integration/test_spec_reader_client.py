"""A client written from spec/ alone (``spec_reader_client``) against the spec's own vectors and
real dcenter/dworker processes with a token: what an implementer in another language gets.

Every message the servers send it is checked against schema/messages.json, and everything it
sends is in the canonical encoding it built from PROTOCOL.md, so a disagreement between the
spec and the servers fails here.
"""
from __future__ import annotations

import json
import math
import os
import socket
import ssl
import struct
import sys

import msgpack
import pytest

from .test_security_tls import Authority
from .spec_reader_client import (CATALOGUE, SPEC, BatchReader, Initiator, KeyRef, Link,
                                SpecClient, SpecError, TaskFailed, encode_batch, pack_value,
                                proof, read_payload, task, unpack_value)

TOKEN = "a token only the cluster knows"
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 2, "env": {"DIST_TOKEN": TOKEN}}
pytestmark = pytest.mark.timeout(120)


def vectors(name: str) -> dict:
    return json.loads((SPEC / "vectors" / f"{name}.json").read_text())


def from_json(value):
    """The vectors' tagged JSON (spec/README.md, Using the vectors) as msgpack values."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        if set(value) == {"$float"}:
            return float(value["$float"])
        if set(value) == {"$ext"}:
            code, data = value["$ext"]
            return msgpack.ExtType(code, bytes.fromhex(data))
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def same(a, b) -> bool:
    """Equal as msgpack values: a float is not an int, NaN equals NaN."""
    if isinstance(a, float) or isinstance(b, float):
        return (type(a) is type(b)) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


# -- the vectors, read as an implementer would ----------------------------------------------
@pytest.mark.parametrize("case", vectors("messages")["cases"], ids=lambda c: c["name"])
def test_the_schema_alone_accepts_and_rejects_as_the_message_vectors_say(case):
    frames = [bytes.fromhex(f) for f in case["frames"]]
    try:
        messages = msgpack.unpackb(frames[0], raw=False)
        assert isinstance(messages, list) or not case["valid"]
        if not isinstance(messages, list):
            raise SpecError("invalid-message", "frame 0 is not an array")
        checked = [CATALOGUE.validate(m, len(frames), frames=frames) for m in messages]
    except SpecError as exc:
        assert not case["valid"] and exc.code == case["error"], exc
        return
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        assert not case["valid"] and case["error"] == "invalid-message", exc
        return
    assert case["valid"], f"accepted, but the vector expects {case.get('error')}"
    if "reencoded_frames" in case:
        return  # compressed frames: a receiver decompresses them first (no lz4 here)
    # Canonical encoding from the catalogue: what the reference re-encodes, byte for byte
    # when the case is canonical.
    expected = from_json(case.get("reencoded", case["decoded"]))
    encoded = CATALOGUE.encode(checked, len(frames))
    assert same(msgpack.unpackb(encoded, raw=False), expected)
    if case["canonical"]:
        assert encoded == frames[0]
    if "reencoded" in case:
        assert encoded == msgpack.packb(expected, use_bin_type=True)


# (the cases with "task_arguments" say what a worker makes of a task's args, not a client)
@pytest.mark.parametrize("case", [c for c in vectors("messages")["payloads"]
                                  if "task_arguments" not in c], ids=lambda c: c["name"])
def test_msgpack_payload_vectors(case):
    data = bytes.fromhex(case["hex"])
    expected = from_json(case["decoded"])
    value = unpack_value(data)

    def plain(v):
        if isinstance(v, KeyRef):
            return msgpack.ExtType(1, v.key.encode())
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    assert same(plain(value), expected)
    assert pack_value(value) == data


@pytest.mark.parametrize("case", vectors("framing")["cases"], ids=lambda c: c["name"])
def test_framing_vectors(case):
    data = bytes.fromhex(case["hex"])
    limits = case["limits"]
    if isinstance(limits, str):
        limits = vectors("framing")["limits"][limits]
    reader = BatchReader((limits["max_frames"], limits["max_frame_bytes"],
                          limits["max_batch_bytes"]))
    if "error" in case:
        with pytest.raises(SpecError) as raised:
            reader.feed(data)
        assert raised.value.code == case["error"]
        return
    batches = [[bytes.fromhex(f) for f in batch] for batch in case["batches"]]
    assert reader.feed(data) == batches
    assert bool(reader.buffer) != case.get("complete", True)
    if case.get("complete", True):
        assert b"".join(encode_batch(b) for b in batches) == data


@pytest.mark.parametrize("case", vectors("auth")["cases"], ids=lambda c: c.get("name"))
def test_auth_vectors(case):
    first, second = bytes.fromhex(case["first_nonce"]), bytes.fromhex(case["second_nonce"])
    assert proof(case["token"], case["label"].encode(), first, second).hex() == case["hmac"]


def initiator_cases():
    return [c for c in vectors("handshake")["cases"] if c["initiator"] is not None]


@pytest.mark.parametrize("case", initiator_cases(), ids=lambda c: c["name"])
def test_the_initiator_replays_the_handshake_vectors(case):
    """Our initiator, fed the S steps, sends the C steps byte for byte, and ends as told."""
    config = case["initiator"]
    side = Initiator(config["role"], config["token"], name=config.get("name"),
                     versions=tuple(config["versions"]), nonce=bytes.fromhex(config["nonce"]),
                     features=config.get("features") or [])
    outgoing = [side.start()]
    error = None
    for step in case["script"]:
        if step["from"] == "C":
            sent = outgoing.pop(0) if outgoing else None
            if step["message"]["op"] == "error":
                assert error is not None and error.code == step["message"]["code"], error
                break
            assert sent is not None
            frame = CATALOGUE.encode([sent], 1)
            assert encode_batch([frame]).hex() == step["hex"], step
            continue
        if error is not None:
            break
        frames = [bytes.fromhex(step["hex"])[16:]]
        [msg] = msgpack.unpackb(frames[0], raw=False)
        try:
            outgoing += side.receive(CATALOGUE.validate(msg, 1))
        except SpecError as exc:
            error = exc
    result = case["result"]
    if result["state"] == "done":
        assert error is None and side.state == "done"
        assert side.version == result["version"]
        assert sorted(side.agreed) == sorted(result.get("features", []))
    else:
        assert error is not None and error.code == result["code"], (error, result)


# -- against real servers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def center(module_cluster) -> str:
    return module_cluster.center.address


@pytest.fixture
def client(center):
    opened = SpecClient(center, TOKEN)
    yield opened
    opened.close()


def test_the_token_handshake_and_its_refusals(center):
    link = Link(center, TOKEN, peer="center")
    assert link.handshake.version == 1
    link.close()
    for token in ("another token", None):
        with pytest.raises(SpecError) as refused:
            Link(center, token, peer="center")
        assert refused.value.code == "auth-failed"
    with pytest.raises(SpecError) as refused:
        Link(center, TOKEN, peer="center", versions=(2, 3))
    assert refused.value.code == "version-mismatch" and refused.value.by_peer
    assert "2..3" in refused.value.message and "1..1" in refused.value.message


def test_import_path_tasks_with_deps_scatter_gather_and_release(client, wait_until):
    stored = client.scatter({"sr-x": 16, "sr-y": 9.0})
    assert set(stored) == {"sr-x", "sr-y"} and all(stored.values())
    client.submit([task("sr-sqrt", "math:sqrt", KeyRef("sr-x"), deps=["sr-x"]),
                   task("sr-add", "operator:add", KeyRef("sr-sqrt"), KeyRef("sr-y"),
                        deps=["sr-sqrt", "sr-y"]),
                   task("sr-nested", "builtins:sum", [KeyRef("sr-x"), KeyRef("sr-y")],
                        deps=["sr-x", "sr-y"]),
                   task("sr-kw", "builtins:round", 2.71828, ndigits=2)])
    done = client.wait("sr-add")
    assert done["op"] == "key-in-memory" and done["type"] == "float" and done["nbytes"] > 0
    assert done["workers"] and all(":" in w and "://" not in w for w in done["workers"])
    assert client.gather(["sr-add", "sr-sqrt", "sr-x", "sr-y", "sr-nested", "sr-kw"]) == {
        "sr-add": 13.0, "sr-sqrt": 4.0, "sr-x": 16, "sr-y": 9.0, "sr-nested": 25.0,
        "sr-kw": 2.72}
    # a key nobody holds: an empty list, not an error
    assert client.who_has(["sr-never-submitted"]) == {"sr-never-submitted": []}
    holders = client.who_has(["sr-add"])["sr-add"]
    client.release(["sr-add", "sr-sqrt", "sr-x", "sr-y", "sr-nested", "sr-kw"])
    # Released: the center forgets the key at once (messages of a connection are handled in
    # order), and the worker frees its data when the center tells it.
    assert client.who_has(["sr-add"])["sr-add"] == []
    wait_until(lambda: client.get_data(holders[0], ["sr-add"])[0]["missing"] == ["sr-add"],
               what="the worker to free a released key")


def test_values_msgpack_cannot_carry_are_reported_in_errors(client):
    client.submit([task("sr-complex", "builtins:complex", 1, 2),
                   task("sr-set", "builtins:frozenset", [1, 2])])
    assert client.wait("sr-complex")["type"] == "complex"
    holder = client.who_has(["sr-complex"])["sr-complex"][0]
    reply, _ = client.get_data(holder, ["sr-complex"], ["msgpack"])
    assert reply["data"] == {} and "sr-complex" in reply["errors"]
    # Python's sets and tuples travel as arrays (PROTOCOL.md, Serializers)
    assert sorted(client.gather(["sr-set"])["sr-set"]) == [1, 2]
    client.release(["sr-complex", "sr-set"])


def test_put_data_nobody_planned_is_freed(client, module_cluster, wait_until):
    address = module_cluster.workers[0].address
    link = client.worker(address)
    link.send([{"op": "put-data", "id": 1, "data": {"sr-orphan": {
        "serializer": "msgpack", "frames": [1]}}}], [pack_value(5)])
    [stored], _ = link.receive()
    assert stored["op"] == "data-stored" and stored["keys"] == ["sr-orphan"]
    link.close()
    wait_until(lambda: client.get_data(address, ["sr-orphan"])[0]["missing"] == ["sr-orphan"],
               what="the worker to free data the center did not plan")
    assert client.who_has(["sr-orphan"]) == {"sr-orphan": []}


def test_bytes_payloads_round_trip(client):
    stored = client.scatter({"sr-raw": b"\x00\x01raw"}, serializer="bytes")
    reply, frames = client.get_data(stored["sr-raw"][0], ["sr-raw"], ["bytes"])
    payload = reply["data"]["sr-raw"]
    assert payload["serializer"] == "bytes" and frames[payload["frames"][0]] == b"\x00\x01raw"
    client.release(["sr-raw"])


def test_task_errors_as_text(client):
    client.submit([task("sr-bad", "math:sqrt", -1.0),
                   task("sr-after", "operator:neg", KeyRef("sr-bad"), deps=["sr-bad"]),
                   task("sr-nomodule", "no_such_module_anywhere:f"),
                   task("sr-noname", "math:no_such_function"),
                   task("sr-nocolon", "math.sqrt"),
                   task("sr-notcallable", "math:pi"),
                   task("sr-missing-dep", "operator:neg", KeyRef("sr-bad")),
                   task("sr-unknown-dep", "operator:neg", KeyRef("sr-nowhere"),
                        deps=["sr-nowhere"]),
                   task("sr-cycle-a", "operator:neg", KeyRef("sr-cycle-b"), deps=["sr-cycle-b"]),
                   task("sr-cycle-b", "operator:neg", KeyRef("sr-cycle-a"), deps=["sr-cycle-a"])])
    client.center.send([{"op": "submit", "tasks": [{
        "key": "sr-msgpack-function", "function": {"serializer": "msgpack", "frames": [1]}}]}],
        [pack_value("math:sqrt")])
    client.center.send([{"op": "submit", "tasks": [{
        "key": "sr-junk-args", "function": "math:sqrt",
        "args": {"serializer": "msgpack", "frames": [1]}}]}], [b"\xc1"])
    bad = client.wait("sr-bad")
    assert bad["op"] == "task-erred" and bad["exception_type"] == "ValueError"
    assert "domain" in bad["message"] and "Traceback" in bad["traceback"]
    assert "exception" not in bad  # no pickle for a client that did not announce it
    after = client.wait("sr-after")
    assert (after["exception_type"], after["message"]) == (bad["exception_type"], bad["message"])
    expected = {"sr-nomodule": "ModuleNotFoundError", "sr-noname": "AttributeError",
                "sr-nocolon": "ValueError", "sr-notcallable": "TypeError",
                "sr-missing-dep": "MissingDependency", "sr-unknown-dep": "MissingDependency",
                "sr-cycle-a": "CyclicDependency", "sr-cycle-b": "CyclicDependency",
                "sr-msgpack-function": "TypeError"}
    for key, exception_type in expected.items():
        erred = client.wait(key)
        assert (erred["op"], erred["exception_type"]) == ("task-erred", exception_type), erred
    for key in ("sr-nomodule", "sr-noname", "sr-nocolon", "sr-notcallable"):
        assert client.outcomes[key]["message"].startswith(f"could not load task {key} on the "
                                                          f"worker"), client.outcomes[key]
    junk = client.wait("sr-junk-args")  # the task errs, saying why; the connection goes on
    assert junk["op"] == "task-erred" and "msgpack" in junk["message"], junk
    assert "sr-bad" in client.outcomes["sr-missing-dep"]["message"]
    assert "sr-nowhere" in client.outcomes["sr-unknown-dep"]["message"]
    with pytest.raises(TaskFailed):
        client.gather(["sr-after"])
    client.release([*expected, "sr-bad", "sr-after", "sr-junk-args"])


def test_extension_types_in_task_arguments(client):
    """PROTOCOL.md, Serializers: a timestamp (type -1) reaches the function as a UTC time;
    any other type but a key reference errs the task, naming the type."""
    for key, function, frame in (
            ("sr-ext-5", "builtins:repr", "9291d4057880"),  # [[ext 5 b"x"], {}]
            ("sr-timestamp", "datetime:datetime.isoformat", "9291d7ff773594006b1683a080")):
        client.center.send([{"op": "submit", "tasks": [{
            "key": key, "function": function,
            "args": {"serializer": "msgpack", "frames": [1]}}]}], [bytes.fromhex(frame)])
    erred = client.wait("sr-ext-5")
    assert erred["op"] == "task-erred", erred
    assert (erred["exception_type"], "extension type 5 " in erred["message"]) == (
        "SerializationError", True), erred
    assert client.gather(["sr-timestamp"]) == {
        "sr-timestamp": "2026-12-07T10:00:00.500000+00:00"}
    client.release(["sr-ext-5", "sr-timestamp"])


def test_cancel_and_cluster_info(center, wait_until):
    """A task cancelled while its call runs is key-cancelled at once; the call goes on (it is
    not interrupted) and worker-query lists it as executing until it returns, as dask's
    call_stack lists a cancelled task still on its thread. Here the call waits for an answer
    from a socket the test holds, so it returns when the test closes that socket, before
    the test ends: the tests after it find the workers idle."""
    client = SpecClient(center, TOKEN, features=["worker-query"])

    def running_on() -> list[str]:
        reply, _ = client.request({"op": "worker-query", "what": "executing",
                                   "keys": ["sr-slow"]})
        return [address for address, keys in reply["answers"].items() if "sr-slow" in keys]

    with socket.create_server(("127.0.0.1", 0)) as never_answers:
        url = f"http://127.0.0.1:{never_answers.getsockname()[1]}/"
        client.submit([task("sr-slow", "urllib.request:urlopen", url, timeout=60)])
        [where] = wait_until(running_on, what="the call to start")
        client.center.send([{"op": "cancel", "keys": ["sr-slow"]}])
        assert client.wait("sr-slow")["op"] == "key-cancelled"
        assert running_on() == [where]
        info, _ = client.request({"op": "cluster-info"})
        assert len(info["workers"]) == 2
        for row in info["workers"]:
            assert {"address", "name", "nthreads", "memory_limit", "status", "processing",
                    "keys", "nbytes", "metrics", "environment"} <= set(row), row
            assert row["nthreads"] == 2 and isinstance(row["processing"], int)
            assert isinstance(row["keys"], int) and isinstance(row["nbytes"], int)
    # (closed, the socket resets the connection it never accepted: the call raises)
    wait_until(lambda: not running_on(), what="the cancelled call to return")
    client.close()


def test_features_are_agreed_and_their_ops_refused_where_not(center):
    # A client that announces nothing: feature ops are refused (the reference does).
    plain = SpecClient(center, TOKEN)
    assert plain.center.agreed == frozenset()
    plain.center.send_raw([msgpack.packb([{"op": "story", "id": 1, "keys": []}])])
    with pytest.raises(SpecError) as refused:
        plain.center.receive()
    assert refused.value.code == "invalid-message" and refused.value.by_peer
    # One that announces what it implements agrees with what the center announced.
    ours = ["scatter-done", "key-recomputing", "no-such-feature"]
    announcing = SpecClient(center, TOKEN, features=ours)
    assert announcing.center.agreed == {"scatter-done", "key-recomputing"}
    stored = announcing.scatter({"sr-f": [1, 2, 3]})  # sends scatter-done
    announcing.submit([task("sr-f-len", "builtins:len", KeyRef("sr-f"), deps=["sr-f"])])
    assert announcing.gather(["sr-f-len"]) == {"sr-f-len": 3}
    assert announcing.who_has(["sr-f"])["sr-f"] == stored["sr-f"]
    announcing.release(["sr-f", "sr-f-len"])
    announcing.close()


def raw_connection(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=20)


def error_of(sock: socket.socket) -> dict:
    reader = BatchReader((1, 1 << 20, 1 << 20))
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("closed without an error message")
        for frames in reader.feed(chunk):
            for msg in msgpack.unpackb(frames[0], raw=False):
                if msg["op"] == "error":
                    assert not sock.recv(65536)  # and then the connection closes
                    return msg


def hello_batch() -> bytes:
    return encode_batch([msgpack.packb([{"op": "hello", "min_version": 1, "max_version": 1,
                                         "role": "client", "nonce": os.urandom(32)}])])


MALFORMED = {
    "zero frames": (struct.pack("<Q", 0), "malformed-frame"),
    "two frames before the handshake": (encode_batch([b"\x90", b"x"]), "limit-exceeded"),
    "a large frame before the handshake": (encode_batch([b"\x90" * 5000]), "limit-exceeded"),
    "frame 0 not msgpack": (encode_batch([b"\xc1"]), "invalid-message"),
    "a message before hello": (encode_batch([msgpack.packb([{"op": "release", "keys": []}])]),
                               "handshake-failed"),
    "an unknown op first": (encode_batch([msgpack.packb([{"op": "teleport"}])]), "unknown-op"),
    "hello with an unknown role": (encode_batch([msgpack.packb([{
        "op": "hello", "min_version": 1, "max_version": 1, "role": "boss",
        "nonce": os.urandom(32)}])]), "handshake-failed"),
    "hello with a short nonce": (encode_batch([msgpack.packb([{
        "op": "hello", "min_version": 1, "max_version": 1, "role": "client",
        "nonce": b"short"}])]), "auth-failed"),
    "a message behind hello in its batch": (encode_batch([msgpack.packb([
        {"op": "hello", "min_version": 1, "max_version": 1, "role": "client",
         "nonce": os.urandom(32)}, {"op": "release", "keys": []}])]), "handshake-failed"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_input_before_the_handshake(center, name):
    data, code = MALFORMED[name]
    with raw_connection(center) as sock:
        sock.sendall(data)
        assert error_of(sock)["code"] == code


AFTER_HANDSHAKE = {
    "an unknown op": ([{"op": "teleport"}], [], "unknown-op"),
    "a missing field": ([{"op": "release"}], [], "invalid-message"),
    "a payload frame beyond the batch": ([{"op": "submit", "tasks": [{
        "key": "sr-m", "function": "math:sqrt",
        "args": {"serializer": "msgpack", "frames": [3]}}]}], [b"\x90"], "invalid-message"),
    "a msgpack payload of two frames": ([{"op": "submit", "tasks": [{
        "key": "sr-m", "function": "math:sqrt",
        "args": {"serializer": "msgpack", "frames": [1, 2]}}]}], [b"\x90", b"\x90"],
        "invalid-payload"),
    "hello again": ([{"op": "hello", "min_version": 1, "max_version": 1, "role": "client",
                      "nonce": os.urandom(32)}], [], "handshake-failed"),
    "authenticate again": ([{"op": "authenticate", "proof": bytes(32)}], [],
                           "handshake-failed"),
    "an op workers send": ([{"op": "heartbeat"}], [], "invalid-message"),
    "a negative size": ([{"op": "scatter-plan", "id": 1, "keys": {"a": -1}}], [],
                        "invalid-message"),
    "an actor task without the feature": ([{"op": "submit", "tasks": [{
        "key": "sr-actor", "function": "builtins:object", "actor": True}]}], [],
        "invalid-message"),
}


@pytest.mark.parametrize("name", AFTER_HANDSHAKE)
def test_malformed_input_after_the_handshake_costs_one_connection(center, client, name):
    messages, payloads, code = AFTER_HANDSHAKE[name]
    link = Link(center, TOKEN, peer="center")
    link.send_raw([msgpack.packb(messages, use_bin_type=True), *payloads])
    with pytest.raises(SpecError) as closed:
        link.receive()
    assert closed.value.by_peer and closed.value.code == code, closed.value
    link.close()
    # everyone else goes on
    client.submit([task("sr-alive", "operator:add", 1, 2)])
    assert client.gather(["sr-alive"]) == {"sr-alive": 3}
    client.release(["sr-alive"])


def test_put_data_a_worker_cannot_read_is_invalid_payload(client, module_cluster):
    address = module_cluster.workers[0].address
    for payload, frames in [({"serializer": "msgpack", "frames": [1]}, [b"\xc1"]),
                            ({"serializer": "pickle", "frames": [1]}, [b"\x80\x05junk"])]:
        link = client.worker(address)
        link.send_raw([msgpack.packb([{"op": "put-data", "id": 1, "data": {"k": payload}}]),
                       *frames])
        with pytest.raises(SpecError) as refused:
            link.receive()
        assert refused.value.code == "invalid-payload" and refused.value.by_peer
        link.close()


def test_against_a_center_that_announces_no_features(processes):
    """What an older center does: the client sends no feature op (no scatter-done here) and
    its scattered data is found all the same, by the workers' own reports."""
    center = processes.start_center(env={"DIST_TOKEN": TOKEN, "DIST_PROTOCOL_FEATURES": ""})
    processes.start_worker(center.address, env={"DIST_TOKEN": TOKEN})
    old = SpecClient(center.address, TOKEN, features=["scatter-done", "key-recomputing"])
    assert old.center.agreed == frozenset()
    stored = old.scatter({"sr-old": 41})
    old.submit([task("sr-old-inc", "operator:add", KeyRef("sr-old"), 1, deps=["sr-old"])])
    assert old.gather(["sr-old-inc"]) == {"sr-old-inc": 42}
    assert old.who_has(["sr-old"])["sr-old"] == stored["sr-old"]
    old.close()
    assert "closing connection" not in center.output()


def test_a_worker_lost_as_a_spec_client_sees_it(processes):
    """Scattered data has no lineage: lost with its only worker (key-lost), and so is a task
    waiting to read it, its message naming the input. A computed value is computed again
    elsewhere: key-recomputing (announced), then key-in-memory."""
    token = {"DIST_TOKEN": TOKEN}
    center = processes.start_center(env=token)
    doomed = processes.start_worker(center.address, env=token)
    # Two threads: one held by the gate below, one free for the value computed again.
    survivor = processes.start_worker(center.address, nthreads=2, env=token)
    client = SpecClient(center.address, TOKEN, features=["key-recomputing"])
    client.scatter({"sr-only-there": 1}, workers=[doomed.address])
    assert client.next_news("sr-only-there")["workers"] == [doomed.address]
    client.submit([dict(task("sr-computed", "operator:add", 1, 2), workers=[doomed.address],
                        allow_other_workers=True)])
    assert client.next_news("sr-computed")["workers"] == [doomed.address]
    client.submit([dict(task("sr-gate", "time:sleep", 60), workers=[survivor.address]),
                   task("sr-reads-lost", "builtins:max", KeyRef("sr-only-there"),
                        KeyRef("sr-gate"), deps=["sr-only-there", "sr-gate"])],
                  wanted=["sr-reads-lost"])
    doomed.kill()
    lost = client.next_news("sr-only-there")
    assert lost["op"] == "key-lost" and lost["message"]
    reader = client.next_news("sr-reads-lost")
    assert reader["op"] == "key-lost" and "sr-only-there" in reader["message"], reader
    assert client.next_news("sr-computed")["op"] == "key-recomputing"
    again = client.next_news("sr-computed")
    assert again["op"] == "key-in-memory" and again["workers"] == [survivor.address]
    assert client.gather(["sr-computed"]) == {"sr-computed": 3}
    client.close()


def test_coordination_primitives_as_the_spec_describes_them(center):
    """Feature coordination: a queue carries a msgpack value between two clients; a lock held
    by a client whose connection closes is free again, and the waiting client gets it."""
    first = SpecClient(center, TOKEN, features=["coordination"])
    second = SpecClient(center, TOKEN, features=["coordination"])
    assert "coordination" in first.center.agreed
    value = {"serializer": "msgpack", "frames": [1]}
    put, _ = first.request({"op": "coordinate", "kind": "queue", "name": "sr-jobs",
                            "action": "put", "value": value}, [pack_value({"path": "a.csv"})])
    assert put["status"] == "ok"
    got, frames = second.request({"op": "coordinate", "kind": "queue", "name": "sr-jobs",
                                  "action": "get", "timeout": 10})
    assert got["status"] == "ok" and unpack_value(frames[got["value"]["frames"][0]]) == {
        "path": "a.csv"}
    held, _ = first.request({"op": "coordinate", "kind": "lock", "name": "sr-db",
                             "action": "acquire", "lease": "first-0"})
    assert (held["status"], held["count"]) == ("ok", 1)
    busy, _ = second.request({"op": "coordinate", "kind": "lock", "name": "sr-db",
                              "action": "acquire", "lease": "second-0", "timeout": 0})
    assert busy["status"] == "timeout"
    second.center.send([{"op": "coordinate", "id": 99, "kind": "lock", "name": "sr-db",
                         "action": "acquire", "lease": "second-1", "timeout": 30}])
    first.close()  # its lease goes with its connection
    granted, _ = second.reply_to(99)
    assert (granted["status"], granted["count"]) == ("ok", 1)
    own, _ = second.request({"op": "coordinate", "kind": "queue", "name": "sr-db",
                             "action": "size"})
    assert (own["status"], own["count"]) == ("ok", 0)  # each kind has names of its own
    wrong, _ = second.request({"op": "coordinate", "kind": "queue", "name": "sr-db",
                               "action": "pop"})
    assert wrong["status"] == "error" and wrong["error"]
    second.close()


def test_a_tls_cluster_from_the_spec(make_cluster, tmp_path):
    """Mutual TLS with a cluster CA (host names not checked); worker addresses carry tls://
    and are reached with the same certificates."""
    authority = Authority(tmp_path, "cluster")
    center_id, worker_id, client_id = (authority.issue(n) for n in ("center", "worker",
                                                                     "client"))
    cluster = make_cluster(n_workers=1, env={"DIST_TOKEN": TOKEN},
                           center_args=center_id.options(authority.ca_file),
                           worker_args=worker_id.options(authority.ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # cluster peers are addressed by IP
    context.load_verify_locations(authority.ca_file)
    context.load_cert_chain(client_id.cert, client_id.key)
    client = SpecClient(cluster.address, TOKEN, tls=context)
    client.submit([task("sr-tls", "operator:mul", 6, 7)])
    [worker] = client.wait("sr-tls")["workers"]
    assert worker.startswith("tls://") and worker == cluster.workers[0].address
    assert client.gather(["sr-tls"]) == {"sr-tls": 42}
    client.close()


def test_settled_keys_answer_at_once_replicate_and_story(center, wait_until):
    first = SpecClient(center, TOKEN)
    first.submit([task("sr-settled", "operator:add", 20, 22), task("sr-failed", "math:log", 0)])
    assert first.wait("sr-settled")["op"] == "key-in-memory"
    assert first.wait("sr-failed")["op"] == "task-erred"
    # Another client submitting the same keys is told their state at once (nothing reruns).
    second = SpecClient(center, TOKEN, features=["story"])
    second.submit([task("sr-settled", "operator:add", 20, 22), task("sr-failed", "math:log", 0)])
    assert second.wait("sr-settled")["op"] == "key-in-memory"
    assert second.wait("sr-failed")["exception_type"] == "ValueError"
    # replicate: n copies on distinct workers (the cluster has two)
    second.center.send([{"op": "replicate", "keys": ["sr-settled"], "n": 2}])
    wait_until(lambda: len(second.who_has(["sr-settled"])["sr-settled"]) == 2,
               what="a second copy of the key")
    # story (feature): the center's and the workers' entries, maps for people to read
    story, _ = second.request({"op": "story", "keys": ["sr-settled"]})
    entries = story["entries"]
    assert entries and all(set(e) == {"key", "start", "finish", "stimulus_id", "time", "worker"}
                           for e in entries), entries
    assert {e["worker"] for e in entries} >= {""}  # the center's own entries
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    for client in (first, second):
        client.release(["sr-settled", "sr-failed"])
        client.close()


# -- found by a client written from the spec alone, against a cluster with a token ------------
def test_an_actor_made_and_called_from_another_language(center):
    """An import-path actor with msgpack arguments; its calls' values come back as msgpack
    where the caller names serializers (feature actor-serializers), and its errors as text
    only to a caller that did not announce pickled-exceptions."""
    features = ["actors", "actor-serializers"]
    client = SpecClient(center, TOKEN, features=features)
    assert set(features) <= client.center.agreed
    client.submit([dict(task("sr-counter", "collections:Counter", "abca"), actor=True)])
    made = client.wait("sr-counter")
    assert made["op"] == "key-in-memory" and made["type"] == "Counter"
    host = client.worker(made["workers"][0])
    assert set(features) <= host.agreed and "pickled-exceptions" not in host.agreed

    def call(name, *args, serializers=("msgpack",), **kwargs):
        msg = {"op": "actor-call", "id": next(client.ids), "key": "sr-counter", "name": name,
               "args": {"serializer": "msgpack", "frames": [1]}}
        if serializers is not None:
            msg["serializers"] = list(serializers)
        host.send([msg], [pack_value([list(args), kwargs])])
        [result], frames = host.receive()
        assert result["op"] == "actor-result" and result["id"] == msg["id"], result
        return result, frames

    result, _ = call("update", "ab")
    assert result["status"] == "ok"
    result, frames = call("most_common", 1)
    assert result["status"] == "ok" and read_payload(result["value"], frames) == [["a", 3]]
    result, _ = call("total", serializers=None)  # none named: a pickle, as before
    assert result["value"]["serializer"] == "pickle"
    result, _ = call("elements")  # an iterator: msgpack cannot carry it
    assert result["status"] == "error" and result["exception_type"] == "SerializationError"
    result, _ = call("no_such_method")
    assert result["status"] == "error" and result["exception_type"] == "AttributeError"
    assert result["message"] and "exception" not in result  # text only: no pickle for us
    host.close()
    client.release(["sr-counter"])
    client.close()


def test_key_references_are_replaced_in_task_arguments_only(client):
    """A value stored with put-data keeps its references: get-data returns them as they are,
    and a task that takes the value gets the reference, not the value it names."""
    client.submit([task("sr-named", "operator:add", 40, 2)])
    assert client.wait("sr-named")["op"] == "key-in-memory"
    client.scatter({"sr-holds-ref": [KeyRef("sr-named"), 1]})
    assert client.gather(["sr-holds-ref"]) == {"sr-holds-ref": [KeyRef("sr-named"), 1]}
    client.submit([task("sr-first", "operator:getitem", KeyRef("sr-holds-ref"), 0,
                        deps=["sr-holds-ref"]),
                   task("sr-resolved", "operator:add", KeyRef("sr-named"), 0,
                        deps=["sr-named"])])
    assert client.gather(["sr-first", "sr-resolved"]) == {"sr-first": KeyRef("sr-named"),
                                                          "sr-resolved": 42}
    client.release(["sr-named", "sr-holds-ref", "sr-first", "sr-resolved"])


def test_scatter_plans_get_data_serializers_and_what_clients_do_not_send(client, center,
                                                                        module_cluster):
    """A plan restricted to workers that are not there is empty and leaves its keys unwanted;
    one restricted by name targets that worker. Empty get-data serializers mean pickle. A
    client sends no heartbeat, and agreeing a feature does not let a client send a center's
    op to a worker."""
    nowhere, _ = client.request({"op": "scatter-plan", "keys": {"sr-nowhere": 8},
                                 "workers": ["sr-no-such-worker"]})
    assert nowhere["targets"] == {}
    client.submit([task("sr-reads-nowhere", "builtins:len", KeyRef("sr-nowhere"),
                        deps=["sr-nowhere"])])
    assert client.wait("sr-reads-nowhere")["exception_type"] == "MissingDependency"
    worker = module_cluster.workers[0]
    named, _ = client.request({"op": "scatter-plan", "keys": {"sr-named-plan": 8},
                               "workers": [worker.name]})
    assert named["targets"] == {"sr-named-plan": [worker.address]}
    client.release(["sr-reads-nowhere", "sr-named-plan"])

    client.submit([task("sr-pickled", "operator:add", 1, 2)])
    [holder] = client.wait("sr-pickled")["workers"]
    reply, _ = client.get_data(holder, ["sr-pickled"], serializers=[])
    assert reply["data"]["sr-pickled"]["serializer"] == "pickle"
    reply, frames = client.get_data(holder, ["sr-pickled"], serializers=["json", "msgpack"])
    assert read_payload(reply["data"]["sr-pickled"], frames) == 3
    client.release(["sr-pickled"])

    coordinating = Link(holder, TOKEN, peer="worker", features=["coordination"])
    assert "coordination" in coordinating.agreed  # a worker lists it too (PROTOCOL.md, Features)
    coordinating.send_raw([msgpack.packb([{"op": "coordinate", "id": 1, "kind": "event",
                                           "name": "sr-e", "action": "wait"}])])
    with pytest.raises(SpecError) as refused:
        coordinating.receive()
    assert refused.value.code == "invalid-message" and refused.value.by_peer
    beating = Link(center, TOKEN, peer="center")
    beating.send_raw([msgpack.packb([{"op": "heartbeat"}])])
    with pytest.raises(SpecError) as refused:
        beating.receive()
    assert refused.value.code == "invalid-message" and refused.value.by_peer


def test_coordination_that_cannot_wait_answers_timeout(center):
    """timeout 0: ok when the action can be done at once, else status timeout -- an event not
    set too, never ok with a count of 0."""
    client = SpecClient(center, TOKEN, features=["coordination"])

    def event(action, **fields):
        return client.request({"op": "coordinate", "kind": "event", "name": "sr-flag",
                               "action": action, **fields})[0]
    assert event("wait", timeout=0)["status"] == "timeout"
    assert (event("set")["status"], event("set")["count"]) == ("ok", 1)
    waited = event("wait", timeout=0)
    assert (waited["status"], waited["count"]) == ("ok", 1)
    assert event("clear")["count"] == 0
    assert event("wait", timeout=0)["status"] == "timeout"
    empty, _ = client.request({"op": "coordinate", "kind": "queue", "name": "sr-empty",
                               "action": "get", "timeout": 0})
    assert empty["status"] == "timeout" and "value" not in empty
    client.close()


def test_small_values_come_as_msgpack_to_a_client_that_names_it(center):
    """Feature small-values-msgpack: key-in-memory carries a small value as msgpack to a
    client that names it, none where msgpack cannot carry it or it is large (those it gathers),
    and a pickle, as before, to a client that names no form."""
    def settled(client, keys):
        values = {}
        while len(values) < len(keys):
            messages, frames = client.center.receive()
            for msg in messages:
                if msg["op"] == "key-in-memory" and msg["key"] in keys:
                    values[msg["key"]] = msg, frames
        return values

    anywhere = SpecClient(center, TOKEN, features=["small-values-msgpack"])
    assert "small-values-msgpack" in anywhere.center.agreed
    keys = anywhere.submit([task("sr-sv-int", "operator:add", 40, 2),
                            task("sr-sv-pair", "builtins:divmod", 7, 2),
                            task("sr-sv-complex", "builtins:complex", 1, 2),
                            task("sr-sv-large", "operator:mul", "x", 5000)],
                           small_values=True, small_values_serializers=["msgpack"])
    got = settled(anywhere, keys)
    assert {key: read_payload(got[key][0]["value"], got[key][1])
            for key in ("sr-sv-int", "sr-sv-pair")} == {"sr-sv-int": 42, "sr-sv-pair": [3, 1]}
    assert "value" not in got["sr-sv-complex"][0] and "value" not in got["sr-sv-large"][0]
    large = got["sr-sv-large"][0]
    reply, frames = anywhere.get_data(large["workers"][0], ["sr-sv-large"])
    assert read_payload(reply["data"]["sr-sv-large"], frames) == "x" * 5000

    python = SpecClient(center, TOKEN, features=["small-values-msgpack"])
    python.submit([task("sr-sv-other", "operator:add", 1, 2)], small_values=True)
    [(other, _)] = settled(python, ["sr-sv-other"]).values()
    assert other["value"]["serializer"] == "pickle"
    for client, held in ((anywhere, keys), (python, ["sr-sv-other"])):
        client.release(held)
        client.close()


def test_a_session_resumed_on_a_center_started_again(processes, tmp_path, monkeypatch):
    """Feature sessions with a durable center (--state-dir, given relative to the center's
    directory): killed and started again, it answers the session that resumes, with the keys
    it does not know, and reports the keys it still has."""
    token = {"DIST_TOKEN": TOKEN}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.chdir(tmp_path)  # the center starts there

    def start():
        return processes.start_center("--state-dir", "state", port=port, env=token)
    center = start()
    processes.start_worker(center.address, env=token)
    client = SpecClient(center.address, TOKEN, features=["sessions"])
    opened, _ = client.request({"op": "session"})
    assert opened["durable"] and not opened["resumed"]
    client.submit([task("sr-kept", "operator:add", 1, 2)])
    assert client.wait("sr-kept")["op"] == "key-in-memory"
    center.kill()
    center.wait(30)
    client.close()

    center = start()
    again = SpecClient(center.address, TOKEN, features=["sessions"])
    resumed, _ = again.request({"op": "session", "resume": opened["client"],
                                "keys": ["sr-kept", "sr-never-sent"]})
    assert resumed["resumed"] and resumed["client"] == opened["client"]
    assert resumed["unknown"] == ["sr-never-sent"]
    assert again.wait("sr-kept")["op"] == "key-in-memory"
    assert again.gather(["sr-kept"]) == {"sr-kept": 3}
    again.close()


def test_a_restart_forgets_datasets_and_keeps_coordination_primitives(processes):
    """restart cancels every key and forgets published datasets; a coordination primitive
    stays, and a client that gets a value referring to keys gone is sent key-lost."""
    token = {"DIST_TOKEN": TOKEN}
    center = processes.start_center(env=token)
    processes.start_worker(center.address, nanny=True, env=token)
    features = ["datasets", "coordination"]
    client = SpecClient(center.address, TOKEN, features=features)
    client.submit([task("sr-before", "operator:add", 1, 2)])
    assert client.wait("sr-before")["op"] == "key-in-memory"
    ref = {"serializer": "msgpack", "frames": [1]}
    published, _ = client.request({"op": "publish-dataset", "name": "sr-ds",
                                   "keys": ["sr-before"], "data": ref},
                                  [pack_value(KeyRef("sr-before"))])
    assert published["error"] == ""
    stored, _ = client.request({"op": "coordinate", "kind": "variable", "name": "sr-var",
                                "action": "set", "value": ref, "keys": ["sr-before"]},
                               [pack_value(KeyRef("sr-before"))])
    assert stored["status"] == "ok"
    restarted, _ = client.request({"op": "restart", "timeout": 60.0})
    assert restarted["workers"] == 1
    assert client.wait("sr-before")["op"] == "key-cancelled"
    gone, _ = client.request({"op": "get-dataset", "name": "sr-ds"})
    assert gone["error"]
    reader = SpecClient(center.address, TOKEN, features=features)
    got, frames = reader.request({"op": "coordinate", "kind": "variable", "name": "sr-var",
                                  "action": "get", "timeout": 0})
    assert got["status"] == "ok" and got["keys"] == ["sr-before"]
    assert read_payload(got["value"], frames) == KeyRef("sr-before")
    assert reader.wait("sr-before")["op"] == "key-lost"
    for opened in (client, reader):
        opened.close()


def test_a_task_without_arguments_and_a_gather_no_named_serializer_answers(client):
    """A TaskSpec without ``args`` calls its function with no arguments; a get-data naming
    only serializers the worker does not know gets the key back in ``errors``, not as pickle."""
    client.center.send([{"op": "submit", "tasks": [{"key": "sr-no-args",
                                                    "function": "os:getpid"}]}])
    settled = client.wait("sr-no-args")
    assert (settled["op"], settled["type"]) == ("key-in-memory", "int"), settled
    assert isinstance(client.gather(["sr-no-args"])["sr-no-args"], int)
    reply, _ = client.get_data(settled["workers"][0], ["sr-no-args"], ["json"])
    assert reply["data"] == {} and "sr-no-args" in reply["errors"], reply
    client.release(["sr-no-args"])


def test_cancel_answers_every_key_it_names(client):
    """Also a key the center never knew and one already in memory, whose key-in-memory is
    then followed by key-cancelled: the key is let go all the same."""
    client.submit([task("sr-done-then-cancelled", "operator:add", 1, 2)])
    assert client.next_news("sr-done-then-cancelled")["op"] == "key-in-memory"
    client.center.send([{"op": "cancel",
                         "keys": ["sr-done-then-cancelled", "sr-cancel-never-known"]}])
    assert client.next_news("sr-done-then-cancelled")["op"] == "key-cancelled"
    assert client.next_news("sr-cancel-never-known")["op"] == "key-cancelled"
    assert client.who_has(["sr-done-then-cancelled"]) == {"sr-done-then-cancelled": []}


def test_two_clients_share_a_key_and_gather_a_large_value(center):
    """Two connections submit one key: it runs once and each is told; one releasing it leaves
    it to the other, which gathers its 8 MB as one msgpack frame."""
    first, second = SpecClient(center, TOKEN), SpecClient(center, TOKEN)
    try:
        for each in (first, second):
            each.submit([task("sr-shared-large", "builtins:bytes", 8_000_000)])
        seen = [each.wait("sr-shared-large") for each in (first, second)]
        assert [s["op"] for s in seen] == ["key-in-memory"] * 2
        first.release(["sr-shared-large"])
        assert second.gather(["sr-shared-large"])["sr-shared-large"] == bytes(8_000_000)
        second.release(["sr-shared-large"])
        assert second.who_has(["sr-shared-large"]) == {"sr-shared-large": []}
    finally:
        first.close()
        second.close()


def test_a_key_named_twice_in_one_submit_is_its_first_spec(client):
    """Equal keys are one task within a submit too: the later spec is ignored."""
    client.submit([task("sr-twice", "operator:add", 6, 6), task("sr-twice", "operator:sub", 1, 1)])
    assert client.gather(["sr-twice"]) == {"sr-twice": 12}
    client.release(["sr-twice"])


def test_a_task_reading_a_planned_key_waits_for_its_data(client):
    """Between scatter-plan and put-data a key is pending: a task reading it waits and runs
    once the data is stored; once released with nothing reading it, it is forgotten."""
    plan, _ = client.request({"op": "scatter-plan", "keys": {"sr-planned": 8}})
    [target] = plan["targets"]["sr-planned"]
    client.submit([task("sr-reads-planned", "operator:neg", KeyRef("sr-planned"),
                        deps=["sr-planned"])])
    link = client.worker(target)
    try:
        link.send([{"op": "put-data", "id": 1, "data": {"sr-planned": {
            "serializer": "msgpack", "frames": [1]}}}], [pack_value(5)])
        [stored], _ = link.receive()
        assert stored["op"] == "data-stored"
    finally:
        link.close()
    assert client.gather(["sr-reads-planned"]) == {"sr-reads-planned": -5}
    client.release(["sr-planned", "sr-reads-planned"])
    client.request({"op": "scatter-plan", "keys": {"sr-never-sent": 8}})
    client.release(["sr-never-sent"])
    client.submit([task("sr-reads-never-sent", "operator:neg", KeyRef("sr-never-sent"),
                        deps=["sr-never-sent"])])
    assert client.wait("sr-reads-never-sent")["exception_type"] == "MissingDependency"
    client.release(["sr-reads-never-sent"])


def test_event_logs_and_the_python_of_pickled_values(center):
    """Features event-log and pickled-values: a log's entries are msgpack `[time, msg]`,
    appended, read back, listed by `topics` (its `name` unused but not empty: every
    primitive's name is) and published to subscribers with `kind: "log"`; an entry of
    another serializer is an error. A pickle put on a queue keeps the putter's `pickled_with`
    for a reader that agreed the feature, and goes without it to one that did not."""
    writer = SpecClient(center, TOKEN, features=["coordination", "event-log", "pickled-values"])
    reader = SpecClient(center, TOKEN, features=["coordination", "event-log"])
    older = SpecClient(center, TOKEN, features=["coordination"])

    def coordinate(client, payloads=(), **fields):
        return client.request({"op": "coordinate", **fields}, payloads)

    subscribed, _ = coordinate(reader, kind="log", name="sr-events", action="subscribe")
    assert (subscribed["status"], subscribed["count"]) == ("ok", 1)
    entry = [1765000000.5, {"action": "started", "n": 3}]
    appended, _ = coordinate(writer, [pack_value(entry)], kind="log", name="sr-events",
                             action="append", value={"serializer": "msgpack", "frames": [1]})
    assert (appended["status"], appended["count"]) == ("ok", 1)
    while not any(m["op"] == "published" for m in reader.others):
        messages, frames = reader.center.receive()
        for msg in messages:
            if msg["op"] == "published":
                assert (msg["topic"], msg["kind"]) == ("sr-events", "log")
                assert read_payload(msg["value"], frames) == entry
        reader._take(messages)
    read, frames = coordinate(writer, kind="log", name="sr-events", action="read")
    assert read["count"] == 1 and [read_payload(v, frames) for v in read["values"]] == [entry]
    listed, frames = coordinate(writer, kind="log", name="any", action="topics")
    assert "sr-events" in read_payload(listed["value"], frames)
    assert listed["count"] == len(read_payload(listed["value"], frames))
    nameless, _ = coordinate(writer, kind="log", name="", action="topics")
    assert nameless["status"] == "error" and nameless["error"]
    as_bytes, _ = coordinate(writer, [b"raw"], kind="log", name="sr-events", action="append",
                             value={"serializer": "bytes", "frames": [1]})
    assert as_bytes["status"] == "error" and "msgpack" in as_bytes["error"]

    pickled = {"serializer": "pickle", "frames": [1]}
    for to in ("sr-tagged-for-new", "sr-tagged-for-old"):
        put, _ = coordinate(writer, [b"\x80\x05K\x07."], kind="queue", name=to, action="put",
                            value=pickled, pickled_with="cpython-3.0")
        assert put["status"] == "ok"
    got, _ = coordinate(writer, kind="queue", name="sr-tagged-for-new", action="get",
                        timeout=10)
    assert (got["status"], got["pickled_with"]) == ("ok", "cpython-3.0")
    got, _ = coordinate(older, kind="queue", name="sr-tagged-for-old", action="get", timeout=10)
    assert got["status"] == "ok" and "pickled_with" not in got
    for client in (writer, reader, older):
        client.close()


def test_worker_query_is_answered_by_its_reply(center, module_cluster):
    """Feature worker-query: answered by worker-query-reply with the same id, keyed by the
    address of each worker asked; `workers` names addresses (a name matches none)."""
    client = SpecClient(center, TOKEN, features=["worker-query"])
    addresses = sorted(w.address for w in module_cluster.workers)
    every, _ = client.request({"op": "worker-query", "what": "logs", "n": 2})
    assert every["op"] == "worker-query-reply" and sorted(every["answers"]) == addresses
    assert all(len(lines) <= 2 for lines in every["answers"].values())
    # (of a key never submitted: a task another test left running is not listed)
    one, _ = client.request({"op": "worker-query", "what": "executing",
                             "keys": ["sr-query-never-submitted"], "workers": [addresses[0]]})
    assert one["answers"] == {addresses[0]: []}
    by_name, _ = client.request({"op": "worker-query", "what": "executing",
                                 "workers": [module_cluster.workers[0].name]})
    assert by_name["answers"] == {}
    own, _ = client.request({"op": "worker-query", "what": "center-logs", "n": 1})
    assert list(own["answers"]) == [""]
    client.close()


def test_a_pickled_exception_says_which_python_pickled_it(center):
    """Feature pickled-exception-python: task-erred carries the worker's pickle tag with the
    pickled exception, to a client that agreed it; a client that agreed only
    pickled-exceptions gets the exception without it, and one that agreed neither, text."""
    tag = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
    told = SpecClient(center, TOKEN,
                      features=["pickled-exceptions", "pickled-exception-python"])
    untold = SpecClient(center, TOKEN, features=["pickled-exceptions"])
    text = SpecClient(center, TOKEN)
    for client in (told, untold, text):
        client.submit([task("sr-tagged-error", "math:sqrt", -1)])
    erred = [client.wait("sr-tagged-error") for client in (told, untold, text)]
    assert all(e["exception_type"] == "ValueError" for e in erred)
    assert erred[0]["exception"]["serializer"] == "pickle" and erred[0]["pickled_with"] == tag
    assert "exception" in erred[1] and "pickled_with" not in erred[1]
    assert "exception" not in erred[2] and "pickled_with" not in erred[2]
    for client in (told, untold, text):
        client.release(["sr-tagged-error"])
        client.close()


def test_worker_status_says_why_a_worker_cannot_spill(processes, tmp_path):
    """Feature worker-status, agreed without worker-events: a worker whose spill directory
    cannot be made says why in its heartbeats, and the center tells a client connected then, and
    one that comes later as it connects."""
    token = {"DIST_TOKEN": TOKEN}
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the spill directory should be")
    center = processes.start_center(env=token)
    worker = processes.start_worker(center.address, "--memory-limit", "300MB",
                                    "--local-directory", str(blocker / "spill"), env=token)
    client = SpecClient(center.address, TOKEN, features=["worker-status"])
    assert client.center.agreed == frozenset({"worker-status"})
    client.submit([task("sr-past-target", "operator:mul", b"x", 200_000_000)])
    assert client.wait("sr-past-target")["op"] == "key-in-memory"

    def status_of(someone):  # (it may have come before the task settled)
        while not any(msg["op"] == "worker-status" for msg in someone.others):
            someone._take(someone.center.receive()[0])
        return next(msg for msg in someone.others if msg["op"] == "worker-status")
    said = status_of(client)
    assert said["address"] == worker.address and "Not a directory" in said["cannot_spill"]
    later = SpecClient(center.address, TOKEN, features=["worker-status"])
    assert status_of(later) == said
    for someone in (client, later):
        someone.close()


def test_a_task_that_kills_its_worker_settles_again_then_errs(processes):
    """Feature task-terminated, as a client sees it: a task that sends SIGTERM to its own
    worker returns first, so its key is in memory, then lost with the worker
    (key-recomputing), computed again on the worker its nanny starts, and so on, until the
    third death errs it as KilledWorker: a key's state is its latest news."""
    token = {"DIST_TOKEN": TOKEN}
    center = processes.start_center(env=token)
    processes.start_worker(center.address, name="doomed", nanny=True, env=token)
    client = SpecClient(center.address, TOKEN, features=["key-recomputing"])
    client.submit([dict(task("sr-own-pid", "os:getpid"), workers=["doomed"]),
                   dict(task("sr-kills-own", "os:kill", KeyRef("sr-own-pid"), 15,
                             deps=["sr-own-pid"]), workers=["doomed"])],
                  wanted=["sr-kills-own"])
    news = []
    while not news or news[-1]["op"] != "task-erred":
        news.append(client.next_news("sr-kills-own"))
    # (each round: in memory, unless the worker went before it told the center the task
    # ended; then recomputing, or the error at the third death)
    ops = [msg["op"] for msg in news]
    assert "key-in-memory" in ops and news[-1]["exception_type"] == "KilledWorker", news
    assert all(op == "key-in-memory" for op, then in zip(ops, ops[1:])
               if then == "key-recomputing"), ops
    client.close()


def test_an_uploaded_module_reaches_the_workers_registered_already(center, module_cluster):
    """Feature uploads from another language: the center keeps the file for workers to come;
    those registered already get it from one pinned import-path task each, as PROTOCOL.md,
    Uploaded files, says, and a task then imports it on any of them."""
    client = SpecClient(center, TOKEN, features=["uploads", "pinned-tasks"])
    content = b"def answer():\n    return 42\n"
    kept, _ = client.request({"op": "upload-file", "file": {
        "name": "sr_uploaded.py", "content": {"serializer": "bytes", "frames": [1]}}}, [content])
    assert not kept.get("error"), kept
    installs = client.submit([
        dict(task(f"sr-install-{i}", "dist_protocol.uploaded_files:install", "sr_uploaded.py",
                  content, True), workers=[worker.address], pinned=True)
        for i, worker in enumerate(module_cluster.workers)])
    paths = client.gather(installs)
    assert all(path.endswith("sr_uploaded.py") for path in paths.values()), paths
    uses = client.submit([dict(task(f"sr-use-upload-{i}", "sr_uploaded:answer"),
                               workers=[worker.address])
                          for i, worker in enumerate(module_cluster.workers)])
    assert client.gather(uses) == dict.fromkeys(uses, 42)
    client.release(installs + uses)
    client.close()
