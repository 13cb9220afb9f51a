"""Hypothesis against a real center and worker, over sockets.

The frame decoder and message validation are fuzzed in memory by dist-protocol's own tests;
here the same generators hit running servers: near-valid bytes before the handshake, and after
it arbitrary message maps and schema-valid messages with arbitrary values. The servers answer
only with the spec's error codes (or the ops' normal replies), never log an internal error, and
keep computing for a real client. The ``slow`` variants run many more examples.
"""
from __future__ import annotations

import asyncio
import dataclasses
import socket

import msgpack
import pytest
from dist_client import Executor
from dist_protocol import strategies as wire
from dist_protocol.comm import connect
from dist_protocol.errors import CommClosedError
from dist_protocol.framing import DEFAULT_LIMITS, FrameDecoder, frames_to_bytes
from dist_protocol.messages import OPS, Error, Submit
from dist_protocol.serialize import serialize
from dist_protocol.timeouts import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(600)

TOKEN = "fuzzing with the token"
MODULE_CLUSTER = {"n_workers": 1, "nthreads": 2, "env": {"DIST_TOKEN": TOKEN}}
SPEC_ERROR_CODES = {"malformed-frame", "limit-exceeded", "invalid-message", "unknown-op",
                    "version-mismatch", "auth-failed", "handshake-failed", "handshake-timeout"}
# Ops a client may send the center, except restart: it restarts every worker, by design.
CLIENT_OPS = sorted(op for op, cls in OPS.items()
                    if "client->center" in cls.direction and op != "restart")
QUICK = settings(max_examples=100, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))
LONG = settings(QUICK, max_examples=3000)


def inc(x):
    return x + 1


@pytest.fixture(scope="module")
def cluster(module_cluster):
    return module_cluster


@pytest.fixture(scope="module")
def client(cluster):
    return cluster.executor(token=TOKEN)


def assert_healthy(cluster, client) -> None:
    for server in (cluster.center, *cluster.workers):
        assert server.popen.poll() is None, server.output()[-3000:]
        assert "internal error" not in server.output(), server.output()[-3000:]
        assert "Traceback" not in server.output(), server.output()[-3000:]
    n = 7 + len(cluster.center.output())
    assert client.submit(inc, n).result(timeout=30) == n + 1
    with Executor(cluster.address, token=TOKEN, timeout=15) as fresh:
        assert fresh.submit(inc, n + 1).result(timeout=30) == n + 2


def exchange_before_handshake(address: str, data: bytes) -> list:
    """Send ``data`` on a fresh connection and read what comes back until the server closes
    it (or, for a prefix of a valid exchange, until it goes quiet)."""
    host, port = address.rsplit(":", 1)
    decoder = FrameDecoder(DEFAULT_LIMITS)
    replies: list = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.settimeout(0.1)
            while chunk := sock.recv(65536):
                for frames in decoder.feed(chunk):
                    replies.extend(msgpack.unpackb(frames[0], raw=False))
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
    return replies


def check_pre_handshake_replies(replies: list) -> None:
    for reply in replies:
        assert reply.get("op") in ("welcome", "error"), reply
        if reply["op"] == "error":
            assert reply["code"] in SPEC_ERROR_CODES, reply


async def exchange_after_handshake(address: str, data: bytes) -> list:
    """Authenticate, write ``data`` as it is, and collect what the server sends for a moment."""
    comm = await connect(address, role="client", token=TOKEN, name="fuzz", timeout=15)
    comm.transport.write(data)
    replies = []

    async def collect() -> None:
        while True:
            replies.append(await comm.recv())
    try:
        await wait_for(collect(), 0.1)
    except (TimeoutError, CommClosedError):
        pass
    finally:
        comm.close()
    return replies


def harmless(message):
    """Tasks whose function is a builtin with msgpack arguments: the worker runs what the
    center schedules, and loading a random pickle there is not what this test is about."""
    if isinstance(message, Submit):
        args = serialize([["fuzz"], {}], ["msgpack"])
        tasks = [dataclasses.replace(task, function="builtins:len", args=args,
                                     retries=min(task.retries, 1))
                 for task in message.tasks]
        return dataclasses.replace(message, tasks=tasks)
    return message


def run_pre_handshake(cluster, client, target_address: str, settings_) -> None:
    @settings_
    @given(data=wire.wire_bytes())
    def property_(data):
        check_pre_handshake_replies(exchange_before_handshake(target_address, data))
    property_()
    assert_healthy(cluster, client)


def run_after_handshake_maps(cluster, client, target_address: str, settings_) -> None:
    @settings_
    @given(frames=wire.batches())
    def property_(frames):
        replies = asyncio.run(exchange_after_handshake(target_address, frames_to_bytes(frames)))
        for reply in replies:
            if isinstance(reply, Error):
                assert reply.code in SPEC_ERROR_CODES, reply
    property_()
    assert_healthy(cluster, client)


def run_valid_client_messages(cluster, client, settings_) -> None:
    @settings_
    @given(messages=st.lists(wire.messages(CLIENT_OPS).map(harmless), min_size=1, max_size=4))
    def property_(messages):
        async def main():
            comm = await connect(cluster.address, role="client", token=TOKEN, name="fuzz",
                                 timeout=15)
            comm.send(*messages)
            async def check_replies() -> None:
                while True:
                    reply = await comm.recv()
                    assert not isinstance(reply, Error) or reply.code in SPEC_ERROR_CODES
            try:
                await wait_for(check_replies(), 0.1)
            except (TimeoutError, CommClosedError):
                pass
            finally:
                comm.close()
        asyncio.run(main())
    property_()
    assert_healthy(cluster, client)


@pytest.mark.parametrize("target", ["center", "worker"])
def test_near_valid_bytes_before_the_handshake(cluster, client, target):
    address = cluster.address if target == "center" else cluster.workers[0].address
    run_pre_handshake(cluster, client, address, QUICK)


@pytest.mark.parametrize("target", ["center", "worker"])
def test_arbitrary_message_maps_after_the_handshake(cluster, client, target):
    address = cluster.address if target == "center" else cluster.workers[0].address
    run_after_handshake_maps(cluster, client, address, QUICK)


def test_schema_valid_client_messages_with_arbitrary_values(cluster, client):
    run_valid_client_messages(cluster, client, QUICK)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("target", ["center", "worker"])
def test_long_network_fuzz(cluster, client, target):
    address = cluster.address if target == "center" else cluster.workers[0].address
    run_pre_handshake(cluster, client, address, LONG)
    run_after_handshake_maps(cluster, client, address, LONG)
    if target == "center":
        run_valid_client_messages(cluster, client, LONG)
