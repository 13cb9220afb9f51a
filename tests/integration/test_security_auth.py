"""Shared-token authentication on every connection of a real cluster.

Client -> center, worker -> center, worker -> worker and client -> worker all run the HMAC
handshake; a wrong or missing token is an ``AuthenticationError`` for the one who connects and
a single log line for the server that refused it.
"""
from __future__ import annotations

import asyncio
import re
import time

import pytest
from dist_client import AuthenticationError, Executor
from dist_protocol.comm import connect
from dist_protocol.errors import HandshakeError

pytestmark = pytest.mark.timeout(90)

TOKEN = "correct horse battery staple " * 2
TOKEN_ENV = {"DIST_TOKEN": TOKEN}


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def refusals(server) -> list[str]:
    return [line for line in server.output().splitlines() if "refused connection from" in line]


def next_refusal(server, before: int, wait_until) -> str:
    """The one log line of the refusal after the first ``before``, once the server wrote it
    (the one refused may learn of it first); fails if there is more than one."""
    lines = wait_until(lambda: refusals(server)[before:], what="the server's log line")
    time.sleep(0.2)
    assert refusals(server)[before:] == lines and len(lines) == 1, server.output()
    return lines[0]


def try_connect(address: str, role: str, token: str | None) -> None:
    """Run the handshake as ``role`` and hang up; raises what ``connect`` raises."""
    async def main():
        comm = await connect(address, role=role, token=token, timeout=10)
        comm.close()
    asyncio.run(main())


@pytest.fixture
def secure_cluster(make_cluster):
    return make_cluster(n_workers=2, nthreads=1, env=TOKEN_ENV)


def test_every_kind_of_connection_authenticates_and_computes(secure_cluster):
    """Results move worker -> worker, and the client scatters to and gathers from workers
    straight: each of those connections must pass the handshake for this to compute."""
    e = secure_cluster.executor(token=TOKEN)
    first, second = (w.address for w in secure_cluster.workers)
    left = e.submit(inc, 1, workers=[first])
    right = e.submit(inc, 10, workers=[second])
    total = e.submit(add, left, right, workers=[first])  # fetches `right` from the other worker
    assert total.result(timeout=30) == 13
    [scattered] = e.scatter([100], workers=[second])
    assert e.gather(e.submit(inc, scattered, workers=[first])) == 101
    assert e.gather([left, right, scattered]) == [2, 11, 100]
    assert refusals(secure_cluster.center) == []
    assert all(refusals(worker) == [] for worker in secure_cluster.workers)


@pytest.mark.parametrize("token", ["wrong token", None], ids=["wrong", "missing"])
def test_a_client_without_the_token_gets_authentication_error_and_the_center_logs_one_line(
        secure_cluster, token, wait_until):
    center = secure_cluster.center
    before = len(refusals(center))
    with pytest.raises(AuthenticationError) as info:
        Executor(secure_cluster.address, token=token, timeout=10)
    if token is None:
        assert "DIST_TOKEN" in str(info.value)  # says how to give one
    else:
        assert "token" in str(info.value)
    line = next_refusal(center, before, wait_until)
    assert "auth-failed" in line and TOKEN not in line and "\n" not in line
    assert secure_cluster.executor(token=TOKEN).submit(inc, 41).result(timeout=30) == 42


@pytest.mark.parametrize("role", ["client", "peer"])
@pytest.mark.parametrize("token", ["wrong token", None], ids=["wrong", "missing"])
def test_workers_refuse_clients_and_peers_without_the_token(secure_cluster, role, token,
                                                           wait_until):
    worker = secure_cluster.workers[0]
    before = len(refusals(worker))
    with pytest.raises(AuthenticationError):
        try_connect(worker.address, role, token)
    assert "auth-failed" in next_refusal(worker, before, wait_until)
    try_connect(worker.address, role, TOKEN)  # the right token is let in


def test_a_worker_without_the_token_cannot_join(secure_cluster, start_worker):
    for env in ({}, {"DIST_TOKEN": "wrong token"}):
        intruder = start_worker(secure_cluster.address, env=env, wait=False)
        assert intruder.wait(timeout=30) == 2  # a configuration error: the nanny would not retry
        assert "AuthenticationError" in intruder.output() or "token" in intruder.output()
    e = secure_cluster.executor(token=TOKEN)
    assert sorted(e.ncores()) == sorted(w.address for w in secure_cluster.workers)


def test_token_files_work_for_center_worker_and_client(tmp_path, start_center, start_worker,
                                                       processes):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    center = start_center("--token-file", str(token_file))
    start_worker(center.address, "--token-file", str(token_file))
    e = processes.executor(center.address, token_file=str(token_file))
    assert e.submit(inc, 1).result(timeout=30) == 2
    with pytest.raises(AuthenticationError):
        Executor(center.address, timeout=10)


def test_a_client_with_a_token_refuses_a_center_without_authentication(start_center):
    """No downgrade: whoever answers without asking for the token is not the cluster."""
    center = start_center()
    with pytest.raises(AuthenticationError, match="does not authenticate"):
        Executor(center.address, token=TOKEN, timeout=10)


def test_the_local_cluster_of_executor_uses_a_fresh_random_token():
    with Executor(n_workers=1, threads_per_worker=1) as e:
        token = e.cluster.token
        assert re.fullmatch(r"[0-9a-f]{64}", token)
        assert e.submit(inc, 1).result(timeout=30) == 2
        with pytest.raises(AuthenticationError):
            Executor(e.address, timeout=10)
        with pytest.raises(AuthenticationError):
            Executor(e.address, token="0" * 64, timeout=10)
        [worker] = e.ncores()
        with pytest.raises(AuthenticationError):
            try_connect(worker, "client", None)
        with Executor(e.address, token=token) as other:
            assert other.submit(inc, 2).result(timeout=30) == 3
    with Executor(n_workers=1, threads_per_worker=1) as e2:
        assert e2.cluster.token != token


def test_dworker_refuses_a_non_loopback_address_without_a_token(start_worker):
    worker = start_worker("127.0.0.1:9", "--host", "0.0.0.0", wait=False)
    assert worker.wait(timeout=30) == 2
    assert "--no-auth" in worker.output() and "DIST_TOKEN" in worker.output()


def test_handshake_errors_name_the_failure_without_the_token(secure_cluster):
    with pytest.raises(HandshakeError) as info:
        try_connect(secure_cluster.address, "client", "not " + TOKEN)
    assert info.value.code == "auth-failed" and TOKEN not in str(info.value)
