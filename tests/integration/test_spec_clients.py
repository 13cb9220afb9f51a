"""Clients written from spec/ alone (examples/clients/) against a real dcenter + dworkers.

Each client scatters msgpack data, submits ``math:sqrt`` and ``operator:add`` on each other's
results, gathers them as msgpack, sees a failing task's error, and releases its keys. A peer
that breaks the protocol loses only its own connection.
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "examples" / "clients"
TOKEN = "spec-clients-test-token"
pytestmark = pytest.mark.timeout(180)

MODULE_CLUSTER = {"n_workers": 2, "nthreads": 1, "env": {"DIST_TOKEN": TOKEN}}


@pytest.fixture(scope="module")
def cluster(module_cluster):
    """The center's address; its workers have registered (conftest's module cluster)."""
    return module_cluster.center.address


def check_demonstration(output: str) -> None:
    result = json.loads(output.strip().splitlines()[-1])
    assert result["values"] == {next(k for k in result["values"] if k.endswith("sum")): 7,
                                next(k for k in result["values"] if k.endswith("sqrt-x")): 4,
                                next(k for k in result["values"] if k.endswith("-x")
                                     and "sqrt" not in k): 16}
    assert result["error"]["type"] == "ValueError"
    assert "math domain error" in result["error"]["message"]
    assert result["error"]["has_traceback"]


def test_python_client_from_the_spec(cluster):
    script = CLIENTS / "python" / "dist_mini_client.py"
    imports = [line for line in script.read_text().splitlines()
               if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "dist_" in line], imports  # the spec alone
    done = subprocess.run([sys.executable, str(script), cluster], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "DIST_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    check_demonstration(done.stdout)


def test_javascript_client_from_the_spec(cluster):
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the JavaScript client")
    folder = CLIENTS / "js"
    if not (folder / "node_modules" / "@msgpack" / "msgpack").exists():
        subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=folder, check=True,
                       capture_output=True, timeout=120)
    done = subprocess.run([node, "client.mjs", cluster], cwd=folder, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "DIST_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    check_demonstration(done.stdout)


def raw_batch(messages) -> bytes:
    frame = msgpack.packb(messages, use_bin_type=True)
    return struct.pack("<QQ", 1, len(frame)) + frame


def read_batch(sock) -> list:
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data
    (n,) = struct.unpack("<Q", exactly(8))
    lengths = struct.unpack(f"<{n}Q", exactly(8 * n))
    frames = [exactly(length) for length in lengths]
    return msgpack.unpackb(frames[0], raw=False)


def test_unsupported_version_gets_the_documented_error_and_the_cluster_goes_on(cluster):
    host, port = cluster.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw_batch([{"op": "hello", "min_version": 7, "max_version": 9,
                                 "role": "client", "nonce": os.urandom(32)}]))
        [error] = read_batch(sock)
        assert error["op"] == "error" and error["code"] == "version-mismatch"
        assert "7..9" in error["message"] and "1..1" in error["message"]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw_batch([{"op": "no-such-op"}]))
        [error] = read_batch(sock)
        assert error["op"] == "error"
    done = subprocess.run([sys.executable, str(CLIENTS / "python" / "dist_mini_client.py"),
                           cluster], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DIST_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
