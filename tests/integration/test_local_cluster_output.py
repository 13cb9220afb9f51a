"""``Executor()``: what the local cluster's workers print reaches the user, with bounded memory.

Reproduces: the local cluster queued every line its workers printed and never drained the
queue: a task printing 2 million lines took the client from 27 to 350 MB and showed nothing.
The client runs in a process of its own here (its RSS is the measurement), with a ``sys.stdout``
that counts the lines it is given, as a terminal would show them, and keeps none.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from .conftest import hermetic_environment

pytestmark = pytest.mark.timeout(240)

LINES = 2_000_000
GROWTH_LIMIT_MB = 30  # the unbounded queue grew by ~320 MB

CLIENT = textwrap.dedent("""
    import json, os, sys, threading, time, warnings
    import psutil
    from dist_client import Executor

    LINES = int(sys.argv[1])

    class Terminal:
        '''Counts the lines written to it, by prefix; keeps nothing.'''
        def __init__(self):
            self.lines = 0
            self.prefixed = 0
            self.first = None
            self.last = None
        def write(self, text):
            self.lines += text.count("\\n")
            if text.startswith("[local-0] "):
                self.prefixed += 1
                self.first = self.first or text
                self.last = text
            return len(text)
        def flush(self):
            pass

    def chatty(n):
        for i in range(n):
            print(f"line {i}")
        warnings.warn("chatty printed everything")
        return n

    process = psutil.Process()
    peak = 0
    def sample():
        global peak
        while True:
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.05)

    def warm_up():
        print("warm")
        return True

    with Executor(n_workers=1, threads_per_worker=1) as executor:
        # The warm-up's line travels apart from its result: wait until it is through, so
        # no line but the measured task's is counted.
        terminal = Terminal()
        real_stdout, sys.stdout = sys.stdout, terminal
        assert executor.submit(warm_up).result(timeout=60)
        deadline = time.monotonic() + 60
        while terminal.prefixed < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        terminal.__init__()
        before = process.memory_info().rss
        threading.Thread(target=sample, daemon=True).start()
        assert executor.submit(chatty, LINES).result(timeout=180) == LINES
        deadline = time.monotonic() + 120
        while terminal.prefixed < LINES and time.monotonic() < deadline:
            time.sleep(0.05)
        after = process.memory_info().rss
        sys.stdout = real_stdout
    print(json.dumps({"before": before, "after": after, "peak": max(peak, after),
                      "lines": terminal.lines, "prefixed": terminal.prefixed,
                      "first": terminal.first, "last": terminal.last}))
""")


def test_two_million_printed_lines_reach_the_terminal_and_cost_the_client_no_memory(tmp_path):
    script = tmp_path / "chatty_client.py"
    script.write_text(CLIENT)
    result = subprocess.run([sys.executable, str(script), str(LINES)], capture_output=True,
                            text=True, env=hermetic_environment(None), cwd=tmp_path,
                            timeout=220)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["prefixed"] == LINES, report
    assert report["first"] == "[local-0] line 0\n"
    assert report["last"] == f"[local-0] line {LINES - 1}\n"
    growth_mb = (report["peak"] - report["before"]) / 2**20
    print(f"client RSS {report['before'] / 2**20:.1f} MB before, peak "
          f"{report['peak'] / 2**20:.1f} MB while {LINES} lines passed through")
    assert growth_mb < GROWTH_LIMIT_MB, report
    # Warnings go to stderr, prefixed too (once: Python shows a warning once per place).
    warnings = [line for line in result.stderr.splitlines()
                if line.startswith("[local-0] ") and "UserWarning: chatty printed everything"
                in line]
    assert len(warnings) == 1, result.stderr[-3000:]
    # Closing the cluster is quiet: no worker reports losing its center on the way out.
    assert "lost the center" not in result.stderr, result.stderr[-3000:]


def test_a_local_cluster_that_fails_to_start_shows_what_the_process_said(tmp_path):
    script = tmp_path / "failing_client.py"
    script.write_text(textwrap.dedent("""
        from dist_client import Executor
        try:
            Executor(n_workers=1)
        except RuntimeError as exc:
            print("ERROR:", exc)
    """))
    # The workers cannot import the dist packages: a stale module shadows them on the path.
    (tmp_path / "dist_worker").mkdir()
    (tmp_path / "dist_worker" / "__init__.py").write_text("raise ImportError('broken install')")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=hermetic_environment(None), cwd=tmp_path, timeout=120)
    assert "ERROR: local cluster failed to start (local-0)" in result.stdout, (
        result.stdout + result.stderr)
    assert "broken install" in result.stdout
