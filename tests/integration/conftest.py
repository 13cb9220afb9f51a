"""Real ``dcenter`` and ``dworker`` processes for the integration tests.

Every server is started through its command line (the ``dcenter``/``dworker`` entry points)
with ``--port 0``; the fixtures read the address it prints. Each server runs in its own process
group, so one signal reaches a nanny and its worker together, and teardown ends the whole
group -- SIGCONT (it may be suspended), SIGTERM, a bounded wait, then SIGKILL -- and fails the
test if any process of the group is still alive. That happens whether the test passed, failed
or timed out; and a server also gets SIGKILL if the pytest process itself dies
(``PR_SET_PDEATHSIG``, for servers started from the main thread), so not even a crashed run
leaves a cluster behind. When a test fails, the output of its servers is printed in the
teardown section of the report.

Functions defined in a test module travel to the workers by value (the workers cannot import
test modules), and ``DIST_*`` variables of the developer's shell reach neither the servers nor
the clients, so a token set for daily work cannot break the suite.

Fixtures
--------
``start_center(*args, port=0, heartbeat_timeout=None, dashboard=False, env=None) -> Server``
    A ``dcenter --host 127.0.0.1 --port 0`` (``port=None``: the CLI's default;
    ``--no-dashboard`` unless ``dashboard``, then on a free port); extra CLI ``args`` and
    ``env`` variables are passed on. Returns once it printed its address.
``start_worker(center, *args, nthreads=1, name=None, nanny=False, env=None, wait=True,
python=None)``
    A ``dworker CENTER`` (``--no-nanny`` unless ``nanny``; on the interpreter ``python`` when
    given) -> ``WorkerServer``. With ``wait`` it returns once the worker printed
    ``Registered with center at:``.
``make_cluster(n_workers=2, nthreads=1, nanny=False, center_args=(), worker_args=(),
heartbeat_timeout=None, env=None) -> Cluster``
    A center and ``n_workers`` workers, started in parallel.
``cluster``
    ``make_cluster(**options)`` with the options of the test's ``@pytest.mark.cluster(...)``
    (two single-threaded workers without one).
``executor``
    An ``Executor`` connected to ``cluster``.
``module_cluster``
    One cluster shared by the tests of a module, for tests that neither depend on where data
    is nor disturb the workers: two workers with two threads each, or the ``make_cluster``
    options of a module-level ``MODULE_CLUSTER = {...}``.
``processes``
    The ``Processes`` behind the fixtures above: its ``start_center``/``start_worker``/
    ``executor`` track what they start, and teardown stops it all.
``wait_until(predicate, timeout=10, what="...")``
    Polls ``predicate`` until it returns something truthy and returns that; fails with
    ``what`` after ``timeout`` seconds. Tests synchronise with this, never with bare sleeps.

``Server``
    ``address``, ``pid``, ``output()``, ``wait_for(prefix)`` (the rest of the first matching
    output line), ``interrupt()`` (Ctrl-C: SIGINT to the group, as a terminal sends it),
    ``terminate()`` (SIGTERM to the started process only), ``kill()`` (SIGKILL to the group),
    ``suspend()``/``resume()`` (SIGSTOP/SIGCONT to the group), ``wait(timeout)`` (the exit
    code, once ``output()`` holds all it printed), ``pids()`` (live processes of the group),
    ``stop()`` (what teardown does).
``WorkerServer(Server)``
    ``name``, ``nanny``; ``address`` is that of the current worker process (a restarted
    worker prints a new one); ``worker_pid()`` is the process running the tasks (the nanny's
    child under a nanny); ``kill_worker_process(signum)`` kills just that process, so the
    nanny starts a new one; ``wait_registered(nth)`` waits for the nth registration.
``Cluster``
    ``address``, ``center``, ``workers``; ``add_worker(**options)`` starts one more worker
    (options of ``start_worker``); ``executor(**kwargs)`` connects a client that is closed at
    teardown; ``worker_pids(executor)`` asks each worker for its process id ({address: pid});
    ``wait_for_workers(executor, n)`` waits until the center knows exactly ``n`` workers;
    ``worker_table(executor)`` is the center's table of workers: ``keys`` and ``nbytes`` as
    the center counts them, ``metrics`` as each worker last reported them in its heartbeat
    (``metrics["keys"]``: the results the worker process itself holds).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import cloudpickle
import psutil
import pytest
from dist_client import Executor

START_TIMEOUT = 30.0  # a cold interpreter importing the packages on a loaded CI machine
STOP_TIMEOUT = 10.0  # graceful shutdown before SIGKILL
OUTPUT_TAIL = 60  # lines of a server's output shown when a test fails
VOUCHER_NAME = "dist-vouch"  # a nanny's second child (dist_worker.vouching.PROCESS_NAME)

T = TypeVar("T")


# -- helpers --------------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition",
               interval: float = 0.02) -> T:
    """The first truthy value of ``predicate()``, polled until ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                 f"(last value: {value!r})")
        time.sleep(interval)


def command(name: str, module: str) -> list[str]:
    """The installed entry point (next to this interpreter first), else ``python -m``."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    found = beside if os.access(beside, os.X_OK) else shutil.which(name)
    return [found] if found else [sys.executable, "-m", module]


def hermetic_environment(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIST_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def _die_with_test_process() -> None:
    """In the child, before exec: SIGKILL when pytest dies, so a crashed run leaks nothing."""
    os.setsid()
    # The signal follows the forking *thread*: a server started from a helper thread would
    # die when that thread ends, so only the main thread's servers ask for it.
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes of the process group ``pgid``."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


# -- servers --------------------------------------------------------------------------------------
class Server:
    """A ``dcenter`` or ``dworker`` in its own process group, its output collected by line."""

    ADDRESS_PREFIX = ""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        self.argv = argv
        self.popen = subprocess.Popen(argv, env=hermetic_environment(env),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, text=True,
                                      preexec_fn=_die_with_test_process)
        self.pid = self.popen.pid  # also the process group id
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, daemon=True,
                         name=f"output of {os.path.basename(argv[0])} {self.pid}").start()

    def _pump(self) -> None:
        """Read the output as it comes, so the pipe never fills and blocks the server."""
        for line in self.popen.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} {' '.join(self.argv[1:])}>"

    # -- output -----------------------------------------------------------------------------------
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def matching(self, prefix: str) -> list[str]:
        """The rest of every output line so far that starts with ``prefix``."""
        with self._changed:
            return [line[len(prefix):].strip() for line in self._lines
                    if line.startswith(prefix)]

    def wait_for(self, prefix: str, nth: int = 1, timeout: float = START_TIMEOUT) -> str:
        """The rest of the ``nth`` output line starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self._lines if line.startswith(prefix)]
                if len(found) >= nth:
                    return found[nth - 1][len(prefix):].strip()
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    why = "it exited" if self._ended else f"{timeout} s passed"
                    raise AssertionError(
                        f"{self!r} printed no {prefix!r} (#{nth}); {why}. Its output:\n"
                        + "".join(self._lines[-OUTPUT_TAIL:]))
                self._changed.wait(min(left, 0.5))

    @property
    def address(self) -> str:
        return self.wait_for(self.ADDRESS_PREFIX)

    # -- signals and life cycle -------------------------------------------------------------------
    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def interrupt(self) -> None:
        """Ctrl-C in a terminal: SIGINT to every process of the foreground group."""
        self.signal_group(signal.SIGINT)

    def terminate(self) -> None:
        """SIGTERM to the started process only (``kill PID``, a service manager)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def suspend(self) -> None:
        self.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal_group(signal.SIGCONT)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """The exit code, once the output thread has also read what the process printed
        before it exited (or children it left still hold the pipe after ``STOP_TIMEOUT``)."""
        code = self.popen.wait(timeout)
        with self._changed:
            self._changed.wait_for(lambda: self._ended, STOP_TIMEOUT)
        return code

    def pids(self) -> list[int]:
        return [p.pid for p in _group_members(self.pid)]

    def stop(self) -> None:
        """End the whole group however it is doing; fail if a process of it survives."""
        self.resume()
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        try:  # children of the started process (a nanny's worker) may outlive it briefly
            wait_until(lambda: not _group_members(self.pid), STOP_TIMEOUT,
                       f"the processes of {self!r} to exit")
        except AssertionError:
            pass
        self.kill()
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        wait_until(lambda: not _group_members(self.pid), STOP_TIMEOUT,
                   f"the processes of {self!r} to die after SIGKILL")
        if self.popen.stdout is not None:
            self.popen.stdout.close()


class CenterServer(Server):
    ADDRESS_PREFIX = "Start center at "


class WorkerServer(Server):
    ADDRESS_PREFIX = "Start worker at "

    def __init__(self, argv: list[str], name: str, nanny: bool,
                 env: dict[str, str] | None = None):
        super().__init__(argv, env)
        self.name = name
        self.nanny = nanny

    @property
    def address(self) -> str:
        """Where the current worker process listens (a restarted one prints a new address)."""
        self.wait_for(self.ADDRESS_PREFIX)
        return self.matching(self.ADDRESS_PREFIX)[-1]

    def wait_registered(self, nth: int = 1, timeout: float = START_TIMEOUT) -> str:
        self.wait_for("Registered with center at: ", nth=nth, timeout=timeout)
        return self.address

    def worker_pid(self, timeout: float = START_TIMEOUT) -> int:
        """The process running the tasks: the nanny's child, or the started process."""
        if not self.nanny:
            return self.pid

        def child() -> int | None:
            try:  # (not the nanny's other child, which vouches for the worker to the center)
                children = [c for c in psutil.Process(self.pid).children()
                            if _name(c) != VOUCHER_NAME]
            except psutil.NoSuchProcess:
                return None
            return children[0].pid if children else None
        return wait_until(child, timeout, f"the worker process of the nanny {self.pid}")

    def kill_worker_process(self, signum: int = signal.SIGKILL) -> int:
        """Kill the process running tasks only; under a nanny a new one takes its place."""
        pid = self.worker_pid()
        os.kill(pid, signum)
        return pid


class Processes:
    """Every server a fixture started; ``stop_all`` ends them, the newest first."""

    def __init__(self) -> None:
        self.servers: list[Server] = []
        self.executors: list[Executor] = []
        self._names = iter(range(1, 10**9))

    def start_center(self, *args: str, port: int | None = 0,
                     heartbeat_timeout: float | None = None, dashboard: bool = False,
                     env: dict[str, str] | None = None,
                     python: str | None = None) -> CenterServer:
        """``python``: run the center on that interpreter (which can import dist-center)."""
        program = [python, "-m", "dist_center.cli"] if python else command("dcenter",
                                                                            "dist_center.cli")
        argv = [*program, "--host", "127.0.0.1"]
        if port is not None:  # None: the CLI's default port
            argv += ["--port", str(port)]
        argv += ["--dashboard-port", "0"] if dashboard else ["--no-dashboard"]
        if heartbeat_timeout is not None:
            argv += ["--heartbeat-timeout", str(heartbeat_timeout)]
        center = CenterServer([*argv, *args], env)
        self.servers.append(center)
        center.wait_for(CenterServer.ADDRESS_PREFIX)
        return center

    def start_worker(self, center: str, *args: str, nthreads: int = 1, name: str | None = None,
                     nanny: bool = False, env: dict[str, str] | None = None, wait: bool = True,
                     python: str | None = None) -> WorkerServer:
        """``python``: run the worker on that interpreter (which has dist-worker installed)."""
        name = name or f"worker-{next(self._names)}"
        program = [python, "-m", "dist_worker.cli"] if python else command("dworker",
                                                                            "dist_worker.cli")
        argv = [*program, center, "--host", "127.0.0.1",
                "--nthreads", str(nthreads), "--name", name,
                "--nanny" if nanny else "--no-nanny", *args]
        worker = WorkerServer(argv, name, nanny, env)
        self.servers.append(worker)
        if wait:
            worker.wait_registered()
        return worker

    def executor(self, address: str, **kwargs: Any) -> Executor:
        executor = Executor(address, **kwargs)
        self.executors.append(executor)
        return executor

    def stop_all(self) -> None:
        errors = []
        # BaseException: a test timeout may strike in the middle of teardown; the other
        # servers must still be stopped before it is passed on.
        for executor in reversed(self.executors):
            try:
                executor.close()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        for server in reversed(self.servers):
            try:
                server.stop()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        if errors:
            raise errors[0]

    def report(self) -> None:
        """Print each server's output (shown by pytest in the teardown of a failed test)."""
        for server in self.servers:
            lines = server.output().splitlines()[-OUTPUT_TAIL:]
            print(f"----- {server!r} (exit code {server.popen.poll()}) -----")
            print("\n".join(lines))


class Cluster:
    def __init__(self, processes: Processes, center: CenterServer, workers: list[WorkerServer],
                 worker_options: dict[str, Any]):
        self.processes = processes
        self.center = center
        self.address = center.address
        self.workers = workers
        self._worker_options = worker_options

    def __repr__(self) -> str:
        return f"<Cluster {self.address} workers={[w.name for w in self.workers]}>"

    def add_worker(self, **options: Any) -> WorkerServer:
        worker = self.processes.start_worker(self.address, **{**self._worker_options, **options})
        self.workers.append(worker)
        return worker

    def executor(self, **kwargs: Any) -> Executor:
        return self.processes.executor(self.address, **kwargs)

    @staticmethod
    def worker_pids(executor: Executor) -> dict[str, int]:
        """{worker address: process id of the process running its tasks}."""
        return executor.run(os.getpid)

    @staticmethod
    def wait_for_workers(executor: Executor, n: int, timeout: float = 10.0) -> dict[str, int]:
        return wait_until(lambda: (lambda ncores: ncores if len(ncores) == n else None)(
            executor.ncores()), timeout, f"the center to know {n} workers")

    @staticmethod
    def submit_running(executor: Executor, function: Callable[[str], Any],
                       timeout: float = 30.0) -> Any:
        """The future of ``function(name)`` once its task runs: it sets the ``Event`` ``name``
        (named for this call alone) as it starts, and may then block as the test needs."""
        from dist_client import Event

        name = f"started-{os.getpid()}-{time.monotonic_ns()}"
        future = executor.submit(function, name, pure=False)
        assert Event(name, executor=executor).wait(timeout=timeout)
        return future

    @staticmethod
    def assert_still_serves(executor: Executor, pids: dict[str, int],
                            timeout: float = 30.0) -> None:
        """The workers run a map's tasks and a lone one, in the processes of ``pids``
        (``worker_pids`` from before): none was stalled, removed or restarted."""
        assert executor.gather(executor.map(lambda x: x + 1, range(20)), timeout=timeout) == list(
            range(1, 21))
        assert executor.submit(sum, [1, 2]).result(timeout=timeout) == 3
        assert Cluster.worker_pids(executor) == pids

    @staticmethod
    def worker_table(executor: Executor) -> dict[str, dict[str, Any]]:
        """{worker address: the center's row for it, with the worker's heartbeat metrics}."""
        rows = executor.core.run(executor.core.refresh_workers())
        return {row["address"]: row for row in rows}


def _make_cluster(processes: Processes, n_workers: int = 2, nthreads: int = 1,
                  nanny: bool = False, center_args: tuple[str, ...] = (),
                  worker_args: tuple[str, ...] = (), heartbeat_timeout: float | None = None,
                  env: dict[str, str] | None = None) -> Cluster:
    center = processes.start_center(*center_args, heartbeat_timeout=heartbeat_timeout, env=env)
    options = {"nthreads": nthreads, "nanny": nanny, "env": env}
    workers = [processes.start_worker(center.address, *worker_args, wait=False, **options)
               for _ in range(n_workers)]
    for worker in workers:  # started together, so a cluster costs one interpreter start-up
        worker.wait_registered()
    return Cluster(processes, center, workers, {**options})


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _test_failed(request) -> bool:
    return any(getattr(request.node, f"report_{when}", None) is not None
               and getattr(request.node, f"report_{when}").failed for when in ("setup", "call"))


@pytest.fixture
def processes(request) -> Iterator[Processes]:
    started = Processes()
    try:
        yield started
    finally:
        if _test_failed(request):
            started.report()
        started.stop_all()


# -- the fixtures ---------------------------------------------------------------------------------
def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "cluster(n_workers=2, nthreads=1, nanny=False, center_args=(), worker_args=(), "
                   "heartbeat_timeout=None, env=None): options of the `cluster` fixture")


@pytest.fixture(scope="session", autouse=True)
def no_dist_settings_from_the_shell() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("DIST_")]:
            patch.delenv(name)
        yield


@pytest.fixture(scope="module", autouse=True)
def test_functions_travel_by_value(request) -> Iterator[None]:
    """Workers cannot import test modules, so their functions and classes are sent by value
    while the module's tests run (and by reference again after: the registry is process-wide)."""
    module = request.module
    if sys.modules.get(module.__name__) is not module:
        yield
        return
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until


@pytest.fixture
def start_center(processes: Processes) -> Callable[..., CenterServer]:
    return processes.start_center


@pytest.fixture
def start_worker(processes: Processes) -> Callable[..., WorkerServer]:
    return processes.start_worker


@pytest.fixture
def make_cluster(processes: Processes) -> Callable[..., Cluster]:
    return lambda **options: _make_cluster(processes, **options)


@pytest.fixture
def cluster(request, processes: Processes) -> Cluster:
    marker = request.node.get_closest_marker("cluster")
    options = dict(marker.kwargs) if marker else {}
    return _make_cluster(processes, **options)


@pytest.fixture
def executor(cluster: Cluster) -> Executor:
    return cluster.executor()


@pytest.fixture(scope="module")
def module_cluster(request) -> Iterator[Cluster]:
    options = getattr(request.module, "MODULE_CLUSTER", {"n_workers": 2, "nthreads": 2})
    started = Processes()
    try:
        yield _make_cluster(started, **options)
    finally:
        started.stop_all()
