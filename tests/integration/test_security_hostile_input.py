"""Hostile bytes against a real center and worker that use a token.

Before the handshake completes, only one small msgpack frame is read and nothing is unpickled;
after it, a malformed batch, an invalid message, an unknown op or a broken limit closes that one
connection with the spec's error code. Whatever arrives, the server goes on: after each attack a
real client still computes on the cluster, and a pickle that would create a file if loaded
never does.
"""
from __future__ import annotations

import asyncio
import os
import pickle
import random
import selectors
import socket
import struct
import threading
import time
import uuid

import msgpack
import pytest
from dist_client import Executor
from dist_protocol import handshake
from dist_protocol.comm import connect
from dist_protocol.errors import CommClosedError
from dist_protocol.framing import DEFAULT_LIMITS, FrameDecoder, frames_to_bytes
from dist_protocol.messages import (ComputeTask, Error, Hello, RegisterWorker, Submit, TaskErred,
                                    TaskSpec, WorkerRegistered, encode_batch)
from dist_protocol.serialize import Payload, serialize
from dist_protocol.timeouts import wait_for

pytestmark = pytest.mark.timeout(120)

TOKEN = "a token only the cluster knows: " + "7f" * 16
TOKEN_ENV = {"DIST_TOKEN": TOKEN}
MAX_FRAME_BYTES = 2**20  # the limit after the handshake, set low so a test can break it
MODULE_CLUSTER = {"n_workers": 1, "nthreads": 2, "env": TOKEN_ENV,
                  "center_args": ("--max-frame-bytes", str(MAX_FRAME_BYTES)),
                  "worker_args": ("--max-frame-bytes", str(MAX_FRAME_BYTES))}
SPEC_ERROR_CODES = {"malformed-frame", "limit-exceeded", "invalid-message", "unknown-op",
                    "version-mismatch", "auth-failed", "handshake-failed", "handshake-timeout"}


def inc(x):
    return x + 1


def touch(path):
    with open(path, "w"):
        pass
    return path


class CreatesFileWhenLoaded:
    """Unpickling this creates ``path``: proof that someone loaded a pickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def file_creating_pickle(path) -> bytes:
    return pickle.dumps(CreatesFileWhenLoaded(path), protocol=5)


def test_the_file_creating_pickle_does_create_the_file_when_loaded(tmp_path):
    """The control: the tests below would notice a pickle being loaded."""
    path = tmp_path / "loaded"
    pickle.loads(file_creating_pickle(path)).close()
    assert path.exists()


# -- raw wire helpers -------------------------------------------------------------------------
def batch(*frames: bytes) -> bytes:
    return frames_to_bytes(list(frames))


def header(*lengths: int, nframes: int | None = None) -> bytes:
    n = len(lengths) if nframes is None else nframes
    return struct.pack(f"<Q{len(lengths)}Q", n, *lengths)


def message_bytes(*messages) -> bytes:
    return frames_to_bytes(encode_batch(list(messages)))


def raw_message_bytes(*wire_maps) -> bytes:
    """A batch whose frame 0 holds exactly these maps (any op, any fields)."""
    return batch(msgpack.packb(list(wire_maps), use_bin_type=True))


def open_socket(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=15)


def read_batches(sock: socket.socket, count: int | None = None, timeout: float = 15) -> list:
    """The message maps the server sends: ``count`` batches, or all until it closes (failing
    if it does not close within ``timeout``). A reset counts as closed."""
    decoder = FrameDecoder(DEFAULT_LIMITS)
    messages: list = []
    batches = 0
    deadline = time.monotonic() + timeout
    while count is None or batches < count:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise AssertionError(f"the server neither answered nor closed in {timeout} s "
                                 f"(so far: {messages})") from None
        if not data:
            if count is not None:
                raise AssertionError(f"closed after {batches} of {count} batches: {messages}")
            return messages
        for frames in decoder.feed(data):
            messages.extend(msgpack.unpackb(frames[0], raw=False))
            batches += 1
    return messages


def local_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def send_and_read_until_closed(address: str, data: bytes) -> tuple[list, str]:
    """The messages the server sent back, and our end's ``host:port`` (as the server logs it)."""
    with open_socket(address) as sock:
        ours = local_address(sock)
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return [], ours  # closed before we finished: what we sent already broke a rule
        return read_batches(sock), ours


def refusals_of(server, peer: str, since: int) -> list[str]:
    """The server's log lines about refusing the connection from ``peer``, written after the
    first ``since`` characters of its output (a port of ours may have been an earlier
    connection's, refused in an earlier test against the same server)."""
    return [line for line in server.output()[since:].splitlines()
            if f"refused connection from {peer}:" in line]


def one_refusal(server, peer: str, since: int, wait_until) -> str:
    """The single log line for the refused connection from ``peer`` (the peer may see the
    connection close before the server has written it)."""
    [line] = wait_until(lambda: refusals_of(server, peer, since),
                        what=f"a log line about {peer}")
    time.sleep(0.1)
    assert refusals_of(server, peer, since) == [line]
    return line


def hello(nonce: bytes | None = None, **fields) -> Hello:
    options = {"min_version": 1, "max_version": 1, "role": "client", "name": "intruder",
               "nonce": os.urandom(32) if nonce is None else nonce}
    options.update(fields)
    return Hello(**options)


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(module_cluster):
    return module_cluster


@pytest.fixture(scope="module")
def standing_client(cluster):
    """A client connected before the attacks, which must stay connected through all of them."""
    return cluster.executor(token=TOKEN)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / f"loaded-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), "someone unpickled a payload"


@pytest.fixture
def still_computes(cluster, standing_client):
    """After the test: the client connected all along and a brand-new one both compute."""
    yield
    n = random.randrange(10**9)
    assert standing_client.submit(inc, n).result(timeout=30) == n + 1
    with Executor(cluster.address, token=TOKEN, timeout=15) as fresh:
        assert fresh.submit(inc, n + 1).result(timeout=30) == n + 2


def server_address(cluster, target: str) -> str:
    return cluster.address if target == "center" else cluster.workers[0].address


def server_of(cluster, target: str):
    return cluster.center if target == "center" else cluster.workers[0]


TARGETS = ["center", "worker"]


# -- before the handshake ---------------------------------------------------------------------
def hostile_inputs(marker_path) -> dict[str, tuple[bytes, str | None]]:
    """name -> (bytes sent first thing on a connection, the error code the server must send,
    or None when the server may just close: it stops reading at the first broken rule)."""
    evil = file_creating_pickle(marker_path)
    hello_frame = encode_batch([hello()])[0]
    return {
        "http request": (b"GET / HTTP/1.1\r\nHost: center\r\nUser-Agent: curl\r\n\r\n",
                         "limit-exceeded"),
        "tls client hello": (bytes.fromhex("16030100c4010000c00303") + os.urandom(200),
                             "limit-exceeded"),
        "frame of 2**63 bytes": (header(2**63) + b"x" * 64, "limit-exceeded"),
        "frame of 2**64-1 bytes": (header(2**64 - 1), "limit-exceeded"),
        "2**63 frames": (struct.pack("<Q", 2**63), "limit-exceeded"),
        "two frames before the handshake": (batch(hello_frame, b"x"), "limit-exceeded"),
        "a 4097-byte frame": (header(4097) + b"\x90" * 4097, "limit-exceeded"),
        "zero frames": (struct.pack("<Q", 0), "malformed-frame"),
        "empty frame 0": (header(0), "invalid-message"),
        "a pickle as frame 0": (batch(evil), "invalid-message"),
        "a pickle after a valid hello": (message_bytes(hello()) + batch(b"x", evil),
                                         None),
        "a pickle as the hello's nonce": (message_bytes(hello(nonce=evil)), "auth-failed"),
        "a pickle as the proof": (message_bytes(hello(), handshake.Authenticate(proof=evil)),
                                  "auth-failed"),
        "a pickle in a msgpack extension": (raw_message_bytes(
            {"op": "hello", "min_version": 1, "max_version": 1, "role": "client",
             "name": msgpack.ExtType(1, evil), "nonce": os.urandom(32)}), "invalid-message"),
        "msgpack that is not a list": (batch(msgpack.packb({"op": "hello"})), "invalid-message"),
        "msgpack nested 3000 deep": (batch(b"\x91" * 3000 + b"\xc0"), "invalid-message"),
        "msgpack claiming 2**32-1 entries": (batch(b"\x91\xdd\xff\xff\xff\xff"),
                                             "invalid-message"),
        "a message without an op": (raw_message_bytes({"role": "client"}), "unknown-op"),
        "an unknown op": (raw_message_bytes({"op": "run-this"}), "unknown-op"),
        "hello with fields of the wrong type": (raw_message_bytes(
            {"op": "hello", "min_version": "1", "max_version": [], "role": 7}),
            "invalid-message"),
        "hello with an unknown role": (message_bytes(hello(role="admin")), "handshake-failed"),
        "hello from the future": (message_bytes(hello(min_version=99, max_version=100)),
                                  "version-mismatch"),
        "authenticate before hello": (message_bytes(handshake.Authenticate(proof=b"\0" * 32)),
                                      "handshake-failed"),
        "submit before the handshake": (message_bytes(Submit(tasks=[TaskSpec(
            key="x", function="os:system", args=Payload("pickle", [evil]))])), None),
        "an error before the handshake": (message_bytes(Error(code="auth-failed",
                                                               message="\nFAKE LOG LINE")),
                                          "auth-failed"),
    }


HOSTILE_NAMES = list(hostile_inputs("unused"))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_bytes_before_the_handshake(cluster, target, name, marker, still_computes,
                                            wait_until):
    data, code = hostile_inputs(marker)[name]
    server = server_of(cluster, target)
    since = len(server.output())
    replies, ours = send_and_read_until_closed(server_address(cluster, target), data)
    errors = [m for m in replies if m.get("op") == "error"]
    if code is not None:
        assert [e["code"] for e in errors] == [code], replies
    assert {e["code"] for e in errors} <= SPEC_ERROR_CODES
    assert all(m.get("op") in ("welcome", "error") for m in replies), replies
    line = one_refusal(server, ours, since, wait_until)
    if code is not None:
        assert line.endswith(f"({code})")
    assert "\nFAKE LOG LINE" not in server.output()  # a peer's text cannot forge log lines


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(cluster, target, seed, marker, still_computes):
    rng = random.Random(seed)
    size = rng.choice([1, 7, 8, 9, 100, 4096, 4113, 65536, 1 << 20])
    replies, _ = send_and_read_until_closed(server_address(cluster, target),
                                            rng.randbytes(size))
    assert all(m.get("op") in ("welcome", "error") for m in replies), replies


@pytest.mark.parametrize("target", TARGETS)
def test_random_bytes_after_a_valid_hello(cluster, target, still_computes):
    rng = random.Random(target)
    for _ in range(5):
        data = message_bytes(hello()) + rng.randbytes(rng.randrange(1, 5000))
        replies, _ = send_and_read_until_closed(server_address(cluster, target), data)
        assert all(m.get("op") in ("welcome", "error") for m in replies), replies


@pytest.mark.parametrize("target", TARGETS)
def test_a_truncated_batch_then_hanging_up(cluster, target, still_computes):
    for data in (header(4000) + b"\x91" * 100, header(), b"\x01\x00\x00"):
        with open_socket(server_address(cluster, target)) as sock:
            sock.sendall(data)


@pytest.mark.parametrize("target", TARGETS)
def test_a_valid_hello_with_a_proof_made_from_another_token(cluster, target, still_computes,
                                                            wait_until):
    """What a client with the wrong token sends if it skips checking the server's proof."""
    server = server_of(cluster, target)
    since = len(server.output())
    nonce = os.urandom(32)
    with open_socket(server_address(cluster, target)) as sock:
        ours = local_address(sock)
        sock.sendall(message_bytes(hello(nonce)))
        [welcome] = read_batches(sock, count=1)
        assert welcome["op"] == "welcome" and welcome["auth"] is True
        proof = handshake.compute_proof("not the token", handshake.INITIATOR_LABEL,
                                        welcome["nonce"], nonce)
        sock.sendall(message_bytes(handshake.Authenticate(proof=proof)))
        replies = read_batches(sock)
    assert [(m["op"], m["code"]) for m in replies] == [("error", "auth-failed")]
    assert "proof does not match the token (auth-failed)" in one_refusal(server, ours, since,
                                                                         wait_until)


# -- a replayed handshake ---------------------------------------------------------------------
class RecordingProxy:
    """A TCP proxy in front of ``upstream`` that records both directions of one connection."""

    def __init__(self, upstream: str):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.from_client = bytearray()
        self.from_server = bytearray()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()

    def _relay(self) -> None:
        self.listener.settimeout(30)
        client, _ = self.listener.accept()
        server = socket.create_connection(self.upstream)
        peers = {client: (server, self.from_client), server: (client, self.from_server)}
        with selectors.DefaultSelector() as selector, client, server:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select(timeout=30):
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self.done.set()
                        return
                    other, record = peers[key.fileobj]
                    record += data
                    other.sendall(data)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def split_batches(data: bytes) -> list[bytes]:
    return [frames_to_bytes(frames) for frames in FrameDecoder(DEFAULT_LIMITS).feed(data)]


def test_a_recorded_session_replayed_does_not_get_in(cluster, tmp_path, still_computes):
    """Record a real client's session (handshake, then a task that creates a file) and play
    its bytes again: the center's fresh nonce makes the recorded proof worthless, so the task
    never runs a second time."""
    proxy = RecordingProxy(cluster.address)
    created = tmp_path / "created-by-the-task"
    try:
        with Executor(proxy.address, token=TOKEN, timeout=15) as e:
            assert e.submit(touch, str(created), pure=False).result(timeout=30)
        assert proxy.done.wait(15)
    finally:
        proxy.close()
    created.unlink()
    sent = split_batches(bytes(proxy.from_client))
    recorded_welcome = read_batches_from(proxy.from_server)[0]
    assert recorded_welcome["op"] == "welcome"
    assert len(sent) >= 3  # hello, authenticate, then the session's messages

    # step by step, as the recorded client did it
    with open_socket(cluster.address) as sock:
        sock.sendall(sent[0])
        [welcome] = read_batches(sock, count=1)
        sock.sendall(b"".join(sent[1:]))
        replies = read_batches(sock)
    assert [(m["op"], m.get("code")) for m in replies] == [("error", "auth-failed")]
    # all at once
    replies, _ = send_and_read_until_closed(cluster.address, b"".join(sent))
    assert [m["op"] for m in replies][-1] == "error"
    time.sleep(1)  # the task, had it been accepted, takes milliseconds
    assert not created.exists()
    assert welcome["op"] == "welcome" and welcome["nonce"] != recorded_welcome["nonce"]


def read_batches_from(data: bytes) -> list:
    return [m for frames in FrameDecoder(DEFAULT_LIMITS).feed(bytes(data))
            for m in msgpack.unpackb(frames[0], raw=False)]


# -- after the handshake ----------------------------------------------------------------------
async def authenticated(address: str, role: str = "client"):
    return await connect(address, role=role, token=TOKEN, name="tester", timeout=15)


async def send_raw_and_expect_error(address: str, data: bytes, role: str = "client") -> str:
    """Authenticate, write ``data`` as it is, and return the code of the error the server
    closes the connection with."""
    comm = await authenticated(address, role)
    comm.transport.write(data)
    try:
        with pytest.raises(CommClosedError):
            print("unexpected reply:", await wait_for(comm.recv(), 15))
    finally:
        comm.close()
    assert isinstance(comm.peer_error, Error)
    assert comm.peer_error.code in comm.close_reason
    return comm.peer_error.code


def after_handshake_inputs(evil: bytes) -> dict[str, tuple[bytes, str, tuple[str, ...]]]:
    """name -> (bytes sent after authenticating, error code, servers it applies to)."""
    both = ("center", "worker")
    task = {"key": "k", "function": "builtins:print"}
    return {
        "an unknown op": (raw_message_bytes({"op": "become-root"}), "unknown-op", both),
        "a message without an op": (raw_message_bytes({"key": "k"}), "unknown-op", both),
        "frame 0 not msgpack": (batch(evil), "invalid-message", both),
        "frame 0 not a list": (batch(msgpack.packb({"op": "submit"})), "invalid-message",
                               both),
        "a submit with tasks that are not a list": (raw_message_bytes(
            {"op": "submit", "tasks": "everything"}), "invalid-message", ("center",)),
        "a payload pointing past the frames": (batch(msgpack.packb([{
            "op": "submit", "tasks": [{**task, "args": {"serializer": "pickle",
                                                       "frames": [5]}}]}]), evil),
            "invalid-message", ("center",)),
        "a payload with an unknown serializer": (batch(msgpack.packb([{
            "op": "submit", "tasks": [{**task, "args": {"serializer": "marshal",
                                                       "frames": [1]}}]}]), evil),
            "invalid-message", ("center",)),
        "an op only workers send": (raw_message_bytes(
            {"op": "task-finished", "key": "k", "nbytes": 1}), "invalid-message", ("center",)),
        "an op only the center sends": (raw_message_bytes(
            {"op": "compute-task", "key": "k", "function": "os:system"}), "invalid-message",
            ("worker",)),
        "get-data with keys that are not strings": (raw_message_bytes(
            {"op": "get-data", "id": 1, "keys": [1, 2]}), "invalid-message", ("worker",)),
        "zero frames": (struct.pack("<Q", 0), "malformed-frame", both),
        "a frame over the configured limit": (header(MAX_FRAME_BYTES + 1) + b"\0" * 1024,
                                              "limit-exceeded", both),
        "2**63 frames": (struct.pack("<Q", 2**63), "limit-exceeded", both),
        # out of turn like any handshake message after the handshake (spec: Handshake)
        "a hello again": (message_bytes(hello()), "handshake-failed", both),
    }


AFTER_CASES = [(target, name) for name, (_, _, targets) in after_handshake_inputs(b"").items()
               for target in targets]


@pytest.mark.parametrize(("target", "name"), AFTER_CASES)
def test_hostile_messages_after_the_handshake_close_only_that_connection(
        cluster, target, name, marker, still_computes):
    data, code, _ = after_handshake_inputs(file_creating_pickle(marker))[name]
    assert asyncio.run(send_raw_and_expect_error(server_address(cluster, target), data)) == code


GRAPHS_A_BUGGY_CLIENT_MAY_SEND = {
    "a cycle": [("a", ["b"]), ("b", ["a"])],
    "a task that depends on itself and on an unknown key": [("a", ["unknown", "a"])],
    "a cycle with an unknown key": [("a", ["b"]), ("b", ["a", "unknown"])],
    "a cycle with an unknown key, the other way": [("a", ["b", "unknown"]), ("b", ["a"])],
}


@pytest.mark.parametrize("name", list(GRAPHS_A_BUGGY_CLIENT_MAY_SEND))
def test_graphs_with_cycles_and_unknown_keys_err_and_the_center_goes_on(cluster, name,
                                                                        still_computes):
    """Keys are hashes of their inputs for the Python client, so it never makes a cycle; a
    client in another language may. Such a graph errs at once, and
    the center goes on."""
    prefix = uuid.uuid4().hex
    args = serialize([["x"], {}], ["msgpack"])
    tasks = [TaskSpec(key=f"{prefix}-{key}", function="builtins:len", args=args,
                      deps=[f"{prefix}-{dep}" for dep in deps])
             for key, deps in GRAPHS_A_BUGGY_CLIENT_MAY_SEND[name]]

    async def main():
        comm = await authenticated(cluster.address)
        comm.send(Submit(tasks=tasks))
        erred = set()
        while len(erred) < len(tasks):
            reply = await wait_for(comm.recv(), 15)
            assert isinstance(reply, TaskErred), reply
            erred.add(reply.key)
        comm.close()
        return erred

    assert asyncio.run(main()) == {task.key for task in tasks}


def test_the_center_passes_pickles_through_without_loading_them(start_center, tmp_path):
    """A center without real workers: a submitted task's pickled function and arguments reach
    a worker byte for byte, and a worker's pickled exception reaches the client byte for byte,
    without the file their loading would create ever appearing."""
    center = start_center(env=TOKEN_ENV)
    function_marker, args_marker, exception_marker = (tmp_path / name for name in
                                                      ("function", "args", "exception"))
    function = Payload("pickle", [file_creating_pickle(function_marker)])
    args = Payload("pickle", [file_creating_pickle(args_marker), b"an out-of-band buffer"])
    exception = Payload("pickle", [file_creating_pickle(exception_marker)])

    async def main():
        worker = await authenticated(center.address, role="worker")
        worker.send(RegisterWorker(address="127.0.0.1:9", nthreads=1, name="fake"))
        assert isinstance(await worker.recv(), WorkerRegistered)
        client = await authenticated(center.address)
        client.send(Submit(tasks=[TaskSpec(key="evil-1", function=function, args=args)]))
        task = await wait_for(worker.recv(), 15)
        assert isinstance(task, ComputeTask) and task.key == "evil-1"
        assert task.function == function and task.args == args
        worker.send(TaskErred(key="evil-1", exception_type="Boom", message="boom",
                              exception=exception))
        erred = await wait_for(client.recv(), 15)
        assert isinstance(erred, TaskErred) and erred.exception == exception
        worker.close()
        client.close()

    asyncio.run(main())
    time.sleep(0.5)
    assert not any(path.exists() for path in (function_marker, args_marker, exception_marker))
    assert "Traceback" not in center.output()


def test_the_center_does_not_import_a_deserializer():
    """The center's code never reaches for pickle: it has no way to load a payload."""
    import ast
    import pathlib

    import dist_center
    root = pathlib.Path(dist_center.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
            elif isinstance(node, ast.Attribute | ast.Name):
                names = [getattr(node, "attr", None) or getattr(node, "id", "")]
            if any(n.split(".")[0] in ("pickle", "cloudpickle", "dill", "marshal", "deserialize",
                                       "loads_function", "shelve") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
