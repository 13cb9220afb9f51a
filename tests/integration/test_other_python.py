"""A client and workers on different Python minor versions: pickled code never crosses over.

Functions pickled by value are bytecode, which changes between minor versions: a worker that
unpickled a 3.12 client's function on 3.11 crashed (segfault) or returned a wrong value. Here a
real client runs on another installed Python than the center and workers (a virtual environment
made once per source state and kept in pytest's cache) and must learn of the mismatch from
``Executor()`` or ``submit``, with both versions named, while the import-path tasks with msgpack
arguments that any language can send keep working across versions.
"""
from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from dist_protocol.comm import connect
from dist_protocol.messages import Data, GetData, KeyInMemory, Submit, TaskErred, TaskSpec
from dist_protocol.serialize import KeyRef, deserialize, serialize

pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("dist-protocol", "dist-worker", "dist-client")
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 90


# The minor versions the packages support (their classifiers): a client on one of them may meet
# workers on any other.
SUPPORTED_MINORS = (10, 11, 12, 13)


def find_python(minor: int) -> tuple[str | None, list[str]]:
    """An installed Python 3.``minor`` (on PATH or under pyenv), and the candidates tried."""
    tried = []
    candidates = [shutil.which(f"python3.{minor}")]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv}/versions/3.{minor}.*/bin/python3.{minor}"))
    for candidate in filter(None, candidates):
        tried.append(candidate)
        try:
            out = subprocess.run([candidate, "-c", "import sys, venv; "
                                  "print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == f"3.{minor}":
            return candidate, tried
    return None, tried


def find_other_python(side: str) -> tuple[str | None, str]:
    """An installed Python of the supported minor version nearest to this one on ``side``
    ("older" or "newer"), and why not."""
    here = sys.version_info[:2]
    minors = [minor for minor in SUPPORTED_MINORS
              if (minor < here[1] if side == "older" else minor > here[1])]
    if side == "older":
        minors.reverse()  # the nearest first
    if not minors:
        return None, (f"no supported Python is {side} than {here[0]}.{here[1]} (supported: "
                      f"{', '.join(f'3.{minor}' for minor in SUPPORTED_MINORS)})")
    tried = []
    for minor in minors:
        python, tried_here = find_python(minor)
        if python is not None:
            return python, ""
        tried += tried_here
    return None, (f"no Python {side} than {here[0]}.{here[1]} is installed (looked for "
                  f"{'/'.join(f'python3.{minor}' for minor in minors)} on PATH and under "
                  f"pyenv; tried {tried or 'nothing'})")


def sources_digest() -> str:
    digest = hashlib.sha256()
    for package in PACKAGES:
        root = REPO / "packages" / package
        for path in sorted([root / "pyproject.toml", *root.glob("src/**/*")]):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module", params=["older", "newer"], ids=lambda side: f"{side}-client")
def other_python(request, tmp_path_factory) -> str:
    """The interpreter of a virtual environment on the nearest older, then the nearest newer,
    Python than this one, with this checkout's dist-protocol, dist-worker and dist-client
    installed (from the sources, not the network; their dependencies come from the package
    index pip is configured with)."""
    base, why = find_other_python(request.param)
    if base is None:
        pytest.skip(why)
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("other-python")) if cache is not None else \
        tmp_path_factory.mktemp("other-python")
    minor = subprocess.run([base, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    venv = root / f"py{minor}-{sources_digest()}"
    python = venv / "bin" / "python"
    if not (venv / "ready").exists():
        for old in root.glob(f"py{minor}-*"):
            shutil.rmtree(old, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--no-input", "-q",
             *(str(REPO / "packages" / p) for p in PACKAGES)],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        if install.returncode != 0:
            pytest.fail(f"installing the packages for {base} failed:\n{install.stderr[-3000:]}")
        (venv / "ready").write_text("ok")
    return str(python)


def run_client(python: str, script: str, *args: str) -> dict:
    """Run ``script`` as a client on ``python``; it prints one JSON object."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIST_", "PYTHON"))}
    done = subprocess.run([python, "-c", textwrap.dedent(script), *args], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, env=env, cwd="/")
    assert done.returncode == 0, f"the client failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions_of(python: str) -> tuple[str, str]:
    """("3.12.1", "3.12") of an interpreter."""
    full = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return full, ".".join(full.split(".")[:2])


STARTED = "Start worker at "  # printed once by every worker process that starts
HERE = ".".join(map(str, sys.version_info[:3]))

CONNECT_ONLY = """
    import json, math, sys, warnings
    from dist_client import EnvironmentMismatch, Executor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = Executor(sys.argv[1], timeout=20)
    out = {"warnings": [str(w.message) for w in caught]}
    # A function importable by name with data arguments runs on any Python, as in dask.
    out["by_name"] = e.gather(e.map(math.sqrt, [4.0, 9.0]), timeout=30)
    try:
        e.submit(lambda x: x + 1, 1)
        out["code"] = None
    except EnvironmentMismatch as exc:
        out["code"] = str(exc)
    e.close()
    print(json.dumps(out))
"""


def test_a_client_on_another_python_is_warned_at_executor_and_runs_what_crosses_over(
        other_python, processes):
    center = processes.start_center()
    workers = [processes.start_worker(center.address) for _ in range(2)]
    out = run_client(other_python, CONNECT_ONLY, center.address)
    theirs, _ = versions_of(other_python)
    [warned] = [text for text in out["warnings"] if "another Python" in text]
    assert f"CPython {theirs}" in warned and f"CPython {HERE}" in warned
    assert out["by_name"] == [2.0, 3.0]
    assert out["code"] is not None and "nothing was sent" in out["code"]
    assert f"CPython {theirs}" in out["code"] and f"CPython {HERE}" in out["code"]
    # Nothing that holds code reached the workers: they run on, unrestarted.
    e = processes.executor(center.address)
    assert e.submit(lambda x: x + 1, 1).result(timeout=30) == 2
    for worker in workers:
        assert len(worker.matching(STARTED)) == 1


MIXED_CLIENT = """
    import json, sys, warnings
    from dist_client import EnvironmentMismatch, Executor
    center, same = sys.argv[1], sys.argv[2]
    out = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = Executor(center, timeout=20)
    out["warnings"] = [str(w.message) for w in caught]

    def f(x):
        return 42

    try:
        e.submit(f, 1)
        out["unpinned"] = None
    except EnvironmentMismatch as exc:
        out["unpinned"] = str(exc)
    out["pinned"] = e.submit(f, 1, workers=[same]).result(timeout=30)
    out["mapped"] = e.gather(e.map(lambda x: x * 10, range(3), workers=[same]), timeout=30)
    out["versions"] = e.versions()
    try:
        e.versions(check=True)
        out["check"] = None
    except EnvironmentMismatch as exc:
        out["check"] = str(exc)
    e.close()
    print(json.dumps(out))
"""


async def import_path_task(center: str, worker: str) -> object:
    """What a client in any language does: an import-path function, msgpack arguments, and the
    result read back as msgpack from the worker that holds it."""
    comm = await connect(center, role="client")
    args = serialize([[2, 3], {}], ["msgpack"])
    comm.send(Submit(tasks=[TaskSpec(key="add-across-versions", function="operator:add",
                                     args=args, workers=[worker])]))
    while True:
        msg = await asyncio.wait_for(comm.recv(), 30)
        if isinstance(msg, TaskErred):
            raise AssertionError(f"the task erred: {msg.exception_type}: {msg.message}")
        if isinstance(msg, KeyInMemory):
            break
    data_comm = await connect(worker, role="client")
    data_comm.send(GetData(id=1, keys=["add-across-versions"], serializers=["msgpack"]))
    reply = await asyncio.wait_for(data_comm.recv(), 30)
    assert isinstance(reply, Data), reply
    comm.close()
    data_comm.close()
    return deserialize(reply.data["add-across-versions"])


def test_a_mixed_cluster_refuses_pickled_code_at_submit_and_runs_it_where_python_matches(
        other_python, processes, wait_until):
    center = processes.start_center(dashboard=True)
    here = processes.start_worker(center.address, name="same-as-tests")
    theirs_full, theirs_minor = versions_of(other_python)
    there = processes.start_worker(center.address, name="other-python", python=other_python)

    out = run_client(other_python, MIXED_CLIENT, center.address, there.address)
    # (same package versions everywhere: the Pythons only)
    [warned] = out["warnings"]
    assert f"{here.address} runs CPython {HERE}" in warned and "another Python" in warned
    assert out["unpinned"] is not None and "nothing was sent" in out["unpinned"]
    assert f"{here.address} runs CPython {HERE}" in out["unpinned"]
    assert out["pinned"] == 42 and out["mapped"] == [0, 10, 20]
    workers = out["versions"]["workers"]
    assert workers[here.address]["python"] == HERE
    assert workers[there.address]["python"] == theirs_full
    assert out["versions"]["client"]["python"] == theirs_full
    assert out["check"] is not None and here.address in out["check"]

    # The same from this side: Executor() works, unpinned pickled code is refused.
    from dist_client import EnvironmentMismatch
    e = processes.executor(center.address)
    with pytest.raises(EnvironmentMismatch, match=f"CPython {theirs_minor}"):
        e.submit(lambda x: x, 1)
    assert e.submit(lambda x: x + 1, 1, workers=[here.address]).result(timeout=30) == 2
    # The language-neutral path is not pickled code: it runs on the other Python's worker.
    assert asyncio.run(import_path_task(center.address, there.address)) == 5
    # The dashboard shows what each worker runs.
    url = center.wait_for("Dashboard at ")
    with urllib.request.urlopen(url.rstrip("/") + "/api/workers", timeout=10) as response:
        rows = {row["address"]: row for row in json.load(response)["workers"]}
    assert rows[there.address]["python"] == f"CPython {theirs_full}"
    assert rows[here.address]["python"] == f"CPython {HERE}"
    assert rows[there.address]["packages"]["dist-worker"]
    # Nobody crashed or restarted.
    for worker in (here, there):
        assert len(worker.matching(STARTED)) == 1


def gated(gate, i):
    import os
    import time
    open(gate + ".started", "a").close()
    while not os.path.exists(gate):
        time.sleep(0.01)
    return i


def test_a_worker_of_another_python_joining_mid_map_takes_none_of_its_tasks(
        other_python, processes, tmp_path, wait_until):
    center = processes.start_center()
    processes.start_worker(center.address, name="same-as-tests")
    e = processes.executor(center.address)
    gate = str(tmp_path / "open")
    futures = e.map(lambda gate, i: gated(gate, i), [gate] * 40, range(40))  # (code)
    wait_until(lambda: os.path.exists(gate + ".started"), what="the map to start")

    there = processes.start_worker(center.address, name="other-python", python=other_python)
    wait_until(lambda: there.address in e.nthreads(), what="the other Python's worker")
    open(gate, "w").close()

    # Every task waited for the worker of its own Python; none was sent to the other to err.
    assert e.gather(futures, timeout=RUN_TIMEOUT) == list(range(40))
    assert "was pickled by" not in there.output()
    assert len(there.matching(STARTED)) == 1


def test_tasks_submitted_before_any_worker_fail_when_only_another_python_joins(
        other_python, processes):
    center = processes.start_center()
    e = processes.executor(center.address)
    futures = e.map(lambda gate, i: gated(gate, i), ["never-opened"] * 3, range(3))

    processes.start_worker(center.address, name="other-python", python=other_python)

    # No worker of the client's Python is there to wait for: a clear error, not a hang.
    for future in futures:
        with pytest.raises(Exception, match="EnvironmentMismatch") as caught:
            future.result(timeout=RUN_TIMEOUT)
        assert f"CPython {'.'.join(HERE.split('.')[:2])}" in str(caught.value)


def test_a_worker_of_another_python_joining_is_known_to_the_client_without_asking(
        other_python, processes, wait_until):
    """Feature ``worker-events``: the center tells the client of the worker as it registers,
    so the client refuses unpinned pickled code at once and never asks ``cluster-info``."""
    from dist_client import EnvironmentMismatch
    from dist_protocol.messages import ClusterInfo
    center = processes.start_center()
    here = processes.start_worker(center.address, name="same-as-tests")
    e = processes.executor(center.address)
    assert e.core.center_has("worker-events")
    asked: list[str] = []
    ask = e.core.ask

    async def counted(make):
        message = make(0)
        asked.append(message.op)
        return await ask(make)
    e.core.ask = counted
    assert e.submit(lambda x: x + 1, 1).result(timeout=30) == 2

    there = processes.start_worker(center.address, name="other-python", python=other_python)
    # Nothing submitted or asked meanwhile: the client hears of it from the center alone.
    wait_until(lambda: "workers=2" in repr(e),
               what="the client to know of the other Python's worker")
    with pytest.raises(EnvironmentMismatch, match=there.address):
        e.submit(lambda x: x + 2, 1)
    futures = [e.submit(lambda x: x * 2, i, workers=[here.address]) for i in range(50)]
    assert e.gather(futures, timeout=RUN_TIMEOUT) == [i * 2 for i in range(50)]

    there.terminate()
    wait_until(lambda: "workers=1" in repr(e), what="the client to hear the worker left")
    assert e.submit(lambda x: x + 3, 1).result(timeout=30) == 4
    assert ClusterInfo.op not in asked, asked


def make_closure(k):
    def add(x):
        return [x + k for _ in range(1)][0]  # (a comprehension: inlined from 3.12 on)
    return add


async def import_path_tasks_on(center: str, worker: str, tasks: dict[str, tuple]) -> dict:
    """Run import-path tasks ``{key: (function, input key, more args)}`` on ``worker``, each
    reading the value of its input key: ``{key: ("memory", value) | ("erred", type, text)}``."""
    comm = await connect(center, role="client")
    comm.send(Submit(tasks=[
        TaskSpec(key=key, function=function, deps=[dep], workers=[worker],
                 args=serialize([[KeyRef(dep), *more], {}], ["msgpack"]))
        for key, (function, dep, more) in tasks.items()]))
    outcomes: dict[str, tuple] = {}
    while len(outcomes) < len(tasks):
        msg = await asyncio.wait_for(comm.recv(), RUN_TIMEOUT)
        if isinstance(msg, TaskErred) and msg.key in tasks:
            outcomes[msg.key] = ("erred", msg.exception_type, msg.message)
        elif isinstance(msg, KeyInMemory) and msg.key in tasks:
            data_comm = await connect(worker, role="client")
            data_comm.send(GetData(id=1, keys=[msg.key], serializers=["msgpack"]))
            reply = await asyncio.wait_for(data_comm.recv(), RUN_TIMEOUT)
            data_comm.close()
            assert isinstance(reply, Data), reply
            outcomes[msg.key] = ("memory", deserialize(reply.data[msg.key]))
    comm.close()
    return outcomes


def test_a_value_holding_code_is_not_read_by_a_worker_of_another_python(
        other_python, processes):
    """Tasks keep to their Python, but values travel: a closure made by a 3.11 worker, read by
    a 3.12 worker's task, ended that worker process without a word. Data crosses over; code
    does not."""
    center = processes.start_center()
    here = processes.start_worker(center.address, name="same-as-tests")
    there = processes.start_worker(center.address, name="other-python", python=other_python)
    theirs_full, _ = versions_of(other_python)
    e = processes.executor(center.address)
    closure = e.submit(make_closure, 5, workers=[here.address])
    data = e.submit(dict, a=1, workers=[here.address])
    assert closure.result(timeout=RUN_TIMEOUT)(1) == 6
    assert data.result(timeout=RUN_TIMEOUT) == {"a": 1}

    outcomes = asyncio.run(import_path_tasks_on(center.address, there.address, {
        "reads-code": ("builtins:callable", closure.key, []),
        "reads-data": ("operator:getitem", data.key, ["a"])}))

    assert outcomes["reads-data"] == ("memory", 1)
    kind, exception_type, text = outcomes["reads-code"]
    assert (kind, exception_type) == ("erred", "EnvironmentMismatch"), outcomes
    assert f"pickled by CPython {HERE}" in text and f"on CPython {theirs_full}" in text, text
    # Nobody crashed or restarted.
    for worker in (here, there):
        assert len(worker.matching(STARTED)) == 1


READ_DATASETS = """
    import json, sys
    from dist_client import Executor
    e = Executor(sys.argv[1], timeout=20)
    out = {}
    for name in ("code", "data"):
        try:
            out[name] = repr(e.get_dataset(name).result(timeout=30))
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    e.close()
    print(json.dumps(out))
"""


def test_a_client_of_another_python_gets_an_error_not_code_made_on_a_worker(
        other_python, processes):
    """A dataset is shared by clients whatever their Python: a closure made on a 3.11 worker,
    read by a 3.12 client, was unpickled there (its bytecode then run by 3.12). Data crosses
    over; code is refused, naming both Pythons."""
    center = processes.start_center()
    here = processes.start_worker(center.address, name="same-as-tests")
    # (a worker of the other client's Python too: a mixed cluster)
    processes.start_worker(center.address, name="other-python", python=other_python)
    theirs_full, _ = versions_of(other_python)
    e = processes.executor(center.address)
    e.publish_dataset(code=e.submit(make_closure, 5, workers=[here.address]),
                      data=e.submit(dict, a=1, workers=[here.address]))

    out = run_client(other_python, READ_DATASETS, center.address)

    assert out["data"] == "{'a': 1}"
    assert out["code"].startswith("SerializationError"), out
    assert f"made it on CPython {HERE}" in out["code"], out
    assert f"this client, on CPython {theirs_full}" in out["code"], out


READ_SHARED = """
    import json, sys
    from dist_client import Event, Executor, Queue, Sub, Variable
    e = Executor(sys.argv[1], timeout=20)
    news = Sub("news")
    Event("subscribed").set()
    Event("shared").wait(timeout=30)

    def read(get):
        try:
            return repr(get())
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    queue = Queue("shared")
    out = {"queue": [read(lambda: queue.get(timeout=30)) for _ in range(2)],
           "variable": [read(lambda: Variable(name).get(timeout=30))
                        for name in ("code", "data")],
           "topic": [read(lambda: news.get(timeout=30)) for _ in range(2)],
           "dataset": [read(lambda: e.get_dataset(name)) for name in ("code", "data")]}
    e.close()
    print(json.dumps(out))
"""


def test_code_put_on_the_center_is_refused_by_a_client_of_another_python(
        other_python, processes):
    """Queues, variables, topics and datasets hand a value to whoever reads it, whatever
    their Python: a closure a 3.11 client put in a queue came out of a 3.12 client's ``get``
    as a function of 3.11 bytecode. Code is refused there, naming both Pythons; data crosses;
    the queue's refused value is not lost."""
    from dist_client import Event, Pub, Queue, Variable

    center = processes.start_center()
    processes.start_worker(center.address, name="same-as-tests")
    # (a worker of the other client's Python too: a mixed cluster)
    processes.start_worker(center.address, name="other-python", python=other_python)
    theirs_full, _ = versions_of(other_python)
    e = processes.executor(center.address)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIST_", "PYTHON"))}
    reader = subprocess.Popen([other_python, "-c", textwrap.dedent(READ_SHARED),
                               center.address], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd="/")
    try:
        assert Event("subscribed", executor=e).wait(timeout=RUN_TIMEOUT)
        code, data = make_closure(5), {"a": 1}
        e.publish_dataset(code, name="code")
        e.publish_dataset(data, name="data")
        Variable("code", executor=e).set(code)
        Variable("data", executor=e).set(data)
        topic = Pub("news", executor=e)
        topic.put(code)
        topic.put(data)
        queue = Queue("shared", executor=e)
        queue.put(code)
        queue.put(data)
        Event("shared", executor=e).set()
        stdout, stderr = reader.communicate(timeout=RUN_TIMEOUT)
    finally:
        reader.kill()
        reader.wait()
    assert reader.returncode == 0, f"the client failed:\n{stdout}\n{stderr}"
    out = json.loads(stdout.strip().splitlines()[-1])

    for kind in ("queue", "variable", "topic", "dataset"):
        refused, read = out[kind]
        assert refused.startswith("SerializationError"), out
        assert f"pickled on CPython {'.'.join(HERE.split('.')[:2])}" in refused, out
        assert f"this process, on CPython {theirs_full}" in refused, out
        assert read == "{'a': 1}", out
    assert "put back at the end of the queue" in out["queue"][0]
    assert queue.get(timeout=RUN_TIMEOUT)(1) == 6  # a reader on its Python still gets it


class Keeper:
    """An actor that gives back and takes in code and data."""

    def give_code(self):
        return make_closure(5)

    def give_data(self):
        return {"a": 1}

    def take(self, value):
        return repr(type(value).__name__)

    def fail(self):
        fail_with_own_class()


READ_ACTOR = """
    import json, sys
    from dist_client import Executor, Variable
    e = Executor(sys.argv[1], timeout=20)
    keeper = Variable("keeper").get(timeout=30)

    def read(call):
        try:
            return repr(call().result(timeout=30))
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    out = {"code_back": read(keeper.give_code), "data_back": read(keeper.give_data),
           "code_in": read(lambda: keeper.take(lambda x: x)),
           "data_in": read(lambda: keeper.take({"b": 2})), "error_back": read(keeper.fail)}
    e.close()
    print(json.dumps(out))
"""


def test_an_actor_and_a_caller_on_another_python_pass_data_and_refuse_code(
        other_python, processes):
    """An actor's calls go straight from the caller to its worker: a closure returned by a
    3.11 actor was unpickled by a 3.12 caller, and a caller's lambda by the actor's worker.
    Code is refused both ways, naming both Pythons; data crosses; the worker goes on."""
    from dist_client import Variable

    center = processes.start_center()
    here = processes.start_worker(center.address, name="same-as-tests")
    processes.start_worker(center.address, name="other-python", python=other_python)
    theirs_full, _ = versions_of(other_python)
    e = processes.executor(center.address)
    keeper = e.submit(Keeper, actor=True, workers=[here.address]).result(timeout=RUN_TIMEOUT)
    Variable("keeper", executor=e).set(keeper)

    out = run_client(other_python, READ_ACTOR, center.address)

    assert out["data_back"] == "{'a': 1}" and out["data_in"] == '"\'dict\'"', out
    assert out["code_back"].startswith("SerializationError"), out
    assert f"this process, on CPython {theirs_full}" in out["code_back"], out
    assert "EnvironmentMismatch" in out["code_in"], out
    assert f"pickled by CPython {theirs_full}" in out["code_in"], out
    assert out["error_back"].startswith("RemoteError: Shouting: NO LUCK! (it was pickled on "
                                        f"CPython {HERE}"), out
    assert keeper.take(1).result(timeout=RUN_TIMEOUT) == "'int'"  # the actor goes on
    assert len(here.matching(STARTED)) == 1


def fail_with_own_class():
    class Shouting(Exception):  # defined here, so pickled by value, its method with it
        def __str__(self):
            return f"{self.args[0].upper()}!"
    raise Shouting("no luck")


def fail_with_a_lambda():
    raise ValueError("no luck", lambda x: x)


def fail_plainly():
    raise ValueError("no luck")


READ_ERRORS = """
    import json, sys
    from dist_client import Executor
    e = Executor(sys.argv[1], timeout=20)
    out = {}
    for name in ("own_class", "lambda", "plain"):
        try:
            e.get_dataset(name).result(timeout=30)
        except Exception as exc:
            out[name] = {"raised": f"{type(exc).__name__}: {exc}",
                         "args": [type(arg).__name__ for arg in exc.args],
                         "remote_traceback": getattr(exc, "remote_traceback", "")}
    e.close()
    print(json.dumps(out))
"""


def test_a_failed_task_s_exception_holding_code_reaches_another_python_as_text(
        other_python, processes):
    """A failed task's pickled exception reaches every client that wants its key: an
    exception class defined in a function (or ``__main__``) of a 3.11 worker, or a lambda in
    its arguments, was built by a 3.12 client reading the dataset's future from 3.11
    bytecode. There it is raised as a ``RemoteError`` with the type's name, the message and
    the worker's traceback, naming both Pythons; an exception without code reads as itself,
    and a client on the worker's Python still gets the original type."""
    center = processes.start_center()
    here = processes.start_worker(center.address, name="same-as-tests")
    # (a worker of the other client's Python too: a mixed cluster)
    processes.start_worker(center.address, name="other-python", python=other_python)
    theirs_full, _ = versions_of(other_python)
    e = processes.executor(center.address)
    failing = {"own_class": e.submit(fail_with_own_class, workers=[here.address]),
               "lambda": e.submit(fail_with_a_lambda, workers=[here.address]),
               "plain": e.submit(fail_plainly, workers=[here.address])}
    with pytest.raises(Exception, match="NO LUCK!") as own:
        failing["own_class"].result(timeout=RUN_TIMEOUT)
    assert type(own.value).__name__ == "Shouting" and str(own.value) == "NO LUCK!"
    e.publish_dataset(**failing)

    out = run_client(other_python, READ_ERRORS, center.address)

    for name, type_name in (("own_class", "Shouting"), ("lambda", "ValueError")):
        raised = out[name]["raised"]
        assert raised.startswith(f"RemoteError: {type_name}: "), out
        assert f"pickled on CPython {'.'.join(HERE.split('.')[:2])}" in raised, out
        assert f"this client, on CPython {theirs_full}" in raised, out
        assert "function" not in out[name]["args"], out
        assert f"in fail_with_{'own_class' if name == 'own_class' else 'a_lambda'}" \
            in out[name]["remote_traceback"], out
    assert "NO LUCK!" in out["own_class"]["raised"], out
    assert out["plain"]["raised"] == "ValueError: no luck", out
    assert len(here.matching(STARTED)) == 1


def make_local_instance():
    class Local:  # defined here, so its class is pickled by value, its method with it
        def twice(self):
            return 2
    return Local()


READ_TYPES = """
    import json, sys
    from dist_client import Executor, wait
    e = Executor(sys.argv[1], timeout=20)
    futures = {name: e.get_dataset(name) for name in ("local", "data")}
    wait(list(futures.values()), timeout=30)
    out = {name: repr(future.type) for name, future in futures.items()}
    e.close()
    print(json.dumps(out))
"""


def test_a_result_s_class_holding_code_is_named_not_built_on_another_python(
        other_python, processes):
    """``Future.type`` unpickles the class the worker sent with ``key-in-memory``: a class
    defined in a function (or ``__main__``) of a 3.11 worker, pickled by value, was built by
    a 3.12 client reading the dataset's future, methods and all, from 3.11 bytecode. There
    its name is the type, as for a class that does not load; a class of a module crosses,
    and a client on the worker's Python still gets the class itself."""
    center = processes.start_center()
    here = processes.start_worker(center.address, name="same-as-tests")
    # (a worker of the other client's Python too: a mixed cluster)
    processes.start_worker(center.address, name="other-python", python=other_python)
    e = processes.executor(center.address)
    local = e.submit(make_local_instance, workers=[here.address])
    data = e.submit(dict, a=1, workers=[here.address])
    assert local.result(timeout=RUN_TIMEOUT).twice() == 2
    assert isinstance(local.type, type) and local.type.__name__ == "Local"
    e.publish_dataset(local=local, data=data)

    out = run_client(other_python, READ_TYPES, center.address)

    assert out == {"local": "'Local'", "data": "<class 'dict'>"}, out
