"""The output of a local cluster's processes, passed on to the user's terminal.

Each child's stdout and stderr are read by a thread of their own. Until the child is up, the
lines are kept (a few hundred at most) for the start-up to find its address in, or to show
when it fails; from then on each line goes straight to this process's ``sys.stdout`` or
``sys.stderr``, prefixed with the child's name (``[local-0] ...``), as dask's LocalCluster
shows its workers' output. Nothing accumulates: a child that prints faster than the terminal
takes it waits on its pipe, so a task printing millions of lines costs the client no memory.
"""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from typing import IO

STARTUP_LINES_KEPT = 500  # a child that floods its output before it is up loses the oldest


class ChildOutput:
    def __init__(self, process: subprocess.Popen, name: str):
        self.process = process
        self.name = name
        self.prefix = f"[{name}] "
        self.started = False
        self._changed = threading.Condition()
        # (line, from stderr) until the child is up
        self._startup: collections.deque[tuple[str, bool]] = collections.deque(
            maxlen=STARTUP_LINES_KEPT)
        self._seen: collections.deque[str] = collections.deque(maxlen=20)  # for errors
        self._open_streams = 2
        # Lines printed before start-up are shown only when asked for (they are the servers'
        # own banners); failures show them in the error instead.
        self._verbose = bool(os.environ.get("DIST_LOCAL_VERBOSE"))
        for stream, to_stderr in ((process.stdout, False), (process.stderr, True)):
            threading.Thread(target=self._pump, args=(stream, to_stderr), daemon=True,
                             name=f"output of {name}").start()

    def _pump(self, stream: IO[str], to_stderr: bool) -> None:
        """Read one stream to its end, so the child never blocks on a full pipe for long."""
        try:
            for line in stream:
                if self.started:  # once set, never unset: no lock needed on this path
                    self._forward(line, to_stderr)
                    continue
                with self._changed:
                    if not self.started:
                        self._startup.append((line, to_stderr))
                        self._changed.notify_all()
                        if self._verbose:
                            self._forward(line, True)
                        continue
                self._forward(line, to_stderr)
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the cluster is closing
        finally:
            try:  # (left open, it warns when the ``Popen`` goes: an error under ``-W error``)
                stream.close()
            except (OSError, ValueError):
                pass
            with self._changed:
                self._open_streams -= 1
                self._changed.notify_all()

    def _forward(self, line: str, to_stderr: bool) -> None:
        target = sys.stderr if to_stderr else sys.stdout
        if target is None:  # no console (pythonw): drop it, but keep reading
            return
        try:
            target.write(self.prefix + line)
        except (OSError, ValueError):
            pass  # a closed or broken terminal must not stop the reading

    def wait_for(self, prefix: str, timeout: float) -> str:
        """The rest of the next start-up line that starts with ``prefix``. ``RuntimeError``
        with the child's last lines if it ends or prints no such line within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                while self._startup:
                    line, _ = self._startup.popleft()
                    self._seen.append(line)
                    if line.startswith(prefix):
                        return line[len(prefix):].strip()
                left = deadline - time.monotonic()
                if left <= 0 or self._open_streams == 0:
                    break
                self._changed.wait(min(left, 0.5))
        raise RuntimeError(f"local cluster failed to start ({self.name}):\n"
                           f"{''.join(self._seen)}")

    def go_live(self) -> None:
        """The child is up: from now on its output goes to the terminal. What arrived after
        the awaited lines goes first, in order: the pumps wait for the lock meanwhile."""
        with self._changed:
            self.started = True
            while self._startup:
                self._forward(*self._startup.popleft())
            self._seen.clear()
