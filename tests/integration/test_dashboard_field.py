"""The dashboard of a real ``dcenter`` against what the field found: a request with two
conflicting Content-Length headers, and /metrics under keys that name one prefix each."""
from __future__ import annotations

import re
import socket
import urllib.request
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.timeout(120)

ROWS = 1_500  # more distinct prefixes than the center counts by name (1,000)


def inc(x):
    return x + 1


@pytest.fixture
def dashboard_cluster(processes):
    center = processes.start_center(dashboard=True)
    processes.start_worker(center.address, nthreads=2)
    return center, center.wait_for("Dashboard at ")


def test_conflicting_content_lengths_are_answered_400(dashboard_cluster):
    _, url = dashboard_cluster
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        # A front end that honours the first length passes the second request on as this
        # one's body; taking the last length (as this server did) answers it as a request.
        hidden = b"GET /api/status HTTP/1.1\r\nHost: center\r\n\r\n"
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: center\r\nContent-Length: %d\r\n"
                     b"Content-Length: 0\r\n\r\n%s" % (len(hidden), hidden))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request", answer
    assert b"conflicting Content-Length headers" in rest
    assert answer.count(b"HTTP/1.1") == 1  # the hidden second request was not answered
    with urllib.request.urlopen(url + "health", timeout=10) as response:  # the center goes on
        assert response.read() == b"ok\n"


def test_metrics_count_at_most_a_thousand_prefixes_and_fold_the_rest(dashboard_cluster,
                                                                     processes):
    center, url = dashboard_cluster
    executor = processes.executor(center.address)
    futures = executor.map(inc, range(ROWS), key=[f"row_{i}" for i in range(ROWS)])
    assert executor.gather(futures, timeout=60) == list(range(1, ROWS + 1))
    with urllib.request.urlopen(url + "metrics", timeout=10) as response:
        text = response.read().decode()
    finished = {m[1]: int(float(m[2])) for m in re.finditer(
        r'^dist_tasks_finished_total\{prefix="([^"]*)"\} (\S+)$', text, re.M)}
    assert len(finished) == 1_001, len(finished)
    assert finished["(other)"] == ROWS - 1_000
    assert sum(finished.values()) == ROWS
    series = [line for line in text.splitlines() if 'prefix="' in line]
    assert len(series) <= 3 * 1_001  # finished, erred and compute seconds per prefix
