"""An Executor opened in a ``multiprocessing`` child of the user's script.

A child started by ``spawn`` or ``forkserver`` (macOS's and Windows' default, and Linux's from
Python 3.14) runs the script again as the module ``__mp_main__``, not ``__main__``: its
functions and classes used to travel to the workers by that name, which no worker can import
("No module named '__mp_main__'"). They travel by value, as the script's own do.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

SCRIPT = textwrap.dedent("""
    import multiprocessing
    import os
    import sys

    from dist_client import Executor


    class Point:
        def __init__(self, x):
            self.x = x


    def double(point):
        return Point(point.x * 2)


    def child(address, queue):
        try:
            with Executor(address) as e:
                doubled = e.submit(double, Point(21)).result(timeout=30)
                # the result is an instance of the child's own class again
                queue.put((type(doubled) is Point, doubled.x))
        except BaseException as exc:
            queue.put(f"{type(exc).__name__}: {exc}")


    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        queue = context.Queue()
        process = context.Process(target=child, args=(os.environ["DIST_TEST_ADDRESS"], queue))
        process.start()
        print(queue.get(timeout=60), flush=True)
        process.join(60)
        print("exit code", process.exitcode)
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_a_child_process_submits_functions_and_classes_of_the_script(cluster, tmp_path,
                                                                     method):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "DIST_TEST_ADDRESS": cluster.address}
    with subprocess.Popen([sys.executable, str(script), method], env=env, text=True,
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=90)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the child, and a forkserver
    assert stdout.splitlines() == ["(True, 42)", "exit code 0"], stdout + stderr
