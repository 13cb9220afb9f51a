"""A task that closes the standard descriptors leaves them to the worker: the next socket the
process opens does not take their numbers, and what is printed goes where it went before."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)


def run(code: str) -> subprocess.CompletedProcess:
    """``code`` in a process of its own (it changes ``os``), its output captured."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=50, check=True)


def test_closed_standard_descriptors_are_put_back_before_a_socket_takes_them():
    done = run("""
        import os, socket, sys
        from dist_worker.standard_streams import keep_standard_descriptors
        keep_standard_descriptors()
        os.close(1)          # a task
        os.close(fd=2)
        os.closerange(0, 3)
        peer = socket.socket()  # the worker's next connection
        print("to stdout", peer.fileno() > 2, flush=True)
        print("to stderr", file=sys.stderr, flush=True)
    """)
    assert done.stdout == "to stdout True\n"
    assert done.stderr == "to stderr\n"


def test_without_the_worker_the_socket_takes_the_number():
    """What the guard prevents: the kernel hands the lowest free number out again."""
    done = run("""
        import os, socket
        os.close(1)
        peer = socket.socket()
        os.write(2, str(peer.fileno()).encode())
    """)
    assert done.stderr == "1"


def test_a_copy_closed_too_leaves_the_descriptor_on_dev_null():
    done = run("""
        import os, sys
        from dist_worker.standard_streams import keep_standard_descriptors
        keep_standard_descriptors()
        os.closerange(3, 4096)  # the kept copies go too
        os.close(1)
        print("discarded", flush=True)
        st = os.fstat(1)
        print(os.path.samestat(st, os.stat(os.devnull)), file=sys.stderr, flush=True)
    """)
    assert done.stdout == ""
    assert done.stderr == "True\n"
