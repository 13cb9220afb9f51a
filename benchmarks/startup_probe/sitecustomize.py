"""Start-up probe for ``startup.py``: this folder is put on ``PYTHONPATH`` for the processes a
probed run starts, so the interpreter loads this module while it starts (as it loads any
``sitecustomize``). When ``DIST_STARTUP_PROBE`` names a file, each process appends one line per
event to it -- pid, wall clock, the process's CPU time so far, the event -- from an audit hook,
so the programs themselves are not changed:

    interpreter   the interpreter has started (site is done; nothing of dist imported)
    import NAME   NAME starts to be imported (only the first module of each group below)
    exec          the process replaces itself with a new interpreter (dcenter's allocator)
    fork          the process forks (the nanny starting its worker); the child's first event
                  is ``forked PARENT_PID``
    bind ADDR     a socket is bound (a server about to listen)
    connect ADDR  a socket connects through Python's socket module (uvloop's own
                  connections raise no event)

Without ``DIST_STARTUP_PROBE`` it does nothing.
"""
import os
import sys
import time

_PATH = os.environ.get("DIST_STARTUP_PROBE")
_MARKED = ("typer", "asyncio", "dist_protocol", "dist_protocol.messages", "dist_center.server",
           "dist_worker.server", "dist_center.cli", "dist_worker.cli", "dist_client")


def _install(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    seen: set[str] = set()
    pid = [os.getpid()]

    def record(event: str) -> None:
        # One write per line on an O_APPEND file: lines of concurrent processes do not mix.
        os.write(fd, f"{os.getpid()} {time.time():.6f} {time.process_time():.6f} {event}\n"
                 .encode())

    def hook(event: str, args: tuple) -> None:
        if os.getpid() != pid[0]:  # the first event in a forked child
            pid[0] = os.getpid()
            record(f"forked {os.getppid()}")
        if event == "import":
            name = args[0]
            if name in _MARKED and name not in seen:
                seen.add(name)
                record(f"import {name}")
        elif event == "os.fork":
            record("fork")
        elif event == "os.exec":
            record("exec")
        elif event == "socket.bind":
            record(f"bind {args[1]!r}".replace(" ", ""))
        elif event == "socket.connect":
            record(f"connect {args[1]!r}".replace(" ", ""))

    record("interpreter " + os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else
                                             sys.executable))
    sys.addaudithook(hook)


if _PATH:
    _install(_PATH)
