"""A large value a client scatters is unpickled off the worker's event loop: unpickled on it,
1 GiB of bytes held the loop for 2.6 s, and no heartbeat, peer or other request was served
meanwhile.

Real ``dcenter``/``dworker`` processes (see conftest.py). The value's unpickling waits for the
test's word on a socket, so the test knows when it is under way and how long it lasts.
"""
from __future__ import annotations

import socket
import threading

import pytest

pytestmark = pytest.mark.timeout(120)

RESULT_TIMEOUT = 30
MB = 10**6


def rebuilt_when_told(data, port):
    """``data``, once the test at ``port`` has been told the unpickling began and says go."""
    import socket
    with socket.create_connection(("127.0.0.1", port)) as told:
        told.sendall(b"begun")
        told.recv(1)  # (the test's go, or its side closed)
    return data


class HeldWhileUnpickled:
    """Unpickles as ``data``, after ``rebuilt_when_told``."""

    def __init__(self, data, port):
        self.data, self.port = data, port

    def __reduce__(self):
        return rebuilt_when_told, (self.data, self.port)


@pytest.mark.cluster(n_workers=1)
def test_the_worker_serves_requests_while_a_large_scatter_is_unpickled(executor):
    [small] = executor.scatter([1])
    data = b"x" * (2 * MB)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(RESULT_TIMEOUT)
        value = HeldWhileUnpickled(data, listener.getsockname()[1])
        scattered = []
        scatter = threading.Thread(target=lambda: scattered.extend(executor.scatter([value])),
                                   daemon=True)
        scatter.start()
        unpickler, _ = listener.accept()
        with unpickler:
            assert unpickler.recv(5) == b"begun"
            try:
                # Unpickled on the loop, this waited for the go below: nothing else is served.
                assert executor.gather([small], timeout=10) == [1]
            finally:
                unpickler.sendall(b"g")
    scatter.join(timeout=RESULT_TIMEOUT)
    assert scattered, "the scatter never returned"
    assert executor.gather(scattered, timeout=RESULT_TIMEOUT) == [data]
