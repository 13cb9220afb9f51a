"""A dask graph sent to the center in several submits (protocol feature ``graph-parts``):
results as from dask's synchronous scheduler, dask's own ``get`` conformance tests with
graphs cut into parts of a few tasks, and nothing left at the center when the client leaves
between parts or a later part is refused."""
from __future__ import annotations

import asyncio
import operator
import pickle
import threading

import pytest

dask = pytest.importorskip("dask")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from dask.utils_test import GetFunctionTestMixin  # noqa: E402
from dist_center.server import Center  # noqa: E402
from dist_client import Executor, dask_graphs  # noqa: E402
from dist_protocol.comm import connect  # noqa: E402
from dist_protocol.key_names import user_key  # noqa: E402
from dist_protocol.messages import Session, SessionReply, Submit, TaskSpec  # noqa: E402
from dist_protocol.serialize import (KeyRef, SerializationError, dumps_function,  # noqa: E402
                                     serialize)

from .conftest import wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(180)
MODULE_CLUSTER = {"n_workers": 2, "nthreads": 2}


@pytest.fixture(scope="module")
def e(module_cluster):
    with Executor(module_cluster.address) as executor:
        yield executor


@pytest.fixture
def parts_of_three(monkeypatch):
    """Every graph of more than three tasks goes in parts of three; the submits it made, a
    list per graph."""
    made: list[list[Submit]] = []
    real = dask_graphs.graph_submits

    def recorded(tasks, wanted, in_parts, part_tasks=3, graph=None, last=True):
        submits = real(tasks, wanted, in_parts, part_tasks, graph=graph, last=last)
        if made and made[-1][-1].more and submits[0].graph == made[-1][-1].graph:
            made[-1] += submits  # a later part of the graph being sent
        else:
            made.append(submits)
        return submits

    monkeypatch.setattr(dask_graphs, "graph_submits", recorded)
    monkeypatch.setattr(dask_graphs, "FIRST_PART_TASKS", 3)
    return made


class TestDaskGetContractInParts(GetFunctionTestMixin):
    """dask.utils_test.GetFunctionTestMixin, unchanged, each graph cut into parts of three."""

    @pytest.fixture(autouse=True)
    def _executor(self, e, parts_of_three):
        self.get = e.get


def test_an_array_graph_in_parts_gives_the_synchronous_result(e, parts_of_three):
    x = da.random.RandomState(7).random((60, 60), chunks=(10, 10))
    y = (x + x.T).sum(axis=0) - x.mean(axis=1)
    expected = y.compute(scheduler="sync")
    with dask.config.set(scheduler=e.get):
        got = y.compute()
    np.testing.assert_allclose(got, expected)
    biggest = max(parts_of_three, key=len)
    assert len(biggest) > 10 and all(s.more for s in biggest[:-1]) and not biggest[-1].more
    assert len({s.graph for s in biggest}) == 1
    # A node without inputs is sent without arguments (it is called without values).
    tasks = [t for s in biggest for t in s.tasks]
    assert any(not t.deps for t in tasks)
    assert all((t.args is None) == (not t.deps) for t in tasks)
    # Only the keys asked for are wanted, each in the part that carries its task.
    wanted = [key for s in biggest for key in s.wanted or ()]
    assert wanted and all(key in {t.key for t in s.tasks} for s in biggest
                          for key in s.wanted or ())


def _sent_nodes(submits: list[Submit]) -> list:
    return [pickle.loads(bytes(t.function.frames[0])) for s in submits for t in s.tasks]


def test_subgraphs_dask_fused_travel_as_nested_tasks_in_every_part(e, parts_of_three):
    from dask._task_spec import Task, _execute_subgraph

    x = da.random.RandomState(3).random((40, 40), chunks=(10, 10))
    # dask fuses each block's chain of elementwise steps and its sum into one subgraph; the
    # client sends each as a task calling the steps nested, not dask's ``execute_graph`` of
    # them (which orders the subgraph again on every run).
    y = (((x + 1) * 2) - x.T).sum(axis=0)
    expected = y.compute(scheduler="sync")
    np.testing.assert_allclose(y.compute(scheduler=e.get), expected)
    biggest = max(parts_of_three, key=len)
    assert len(biggest) > 2  # (sent in parts, each unfused as it was packed)
    nodes = _sent_nodes(biggest)
    assert all(type(node) is Task for node in nodes)
    assert not [node.key for node in nodes if node.func is _execute_subgraph]
    assert any(isinstance(arg, Task) for node in nodes for arg in node.args)


def test_a_dataframe_groupby_in_parts_gives_the_synchronous_result(e, parts_of_three):
    df = pd.DataFrame({"k": np.arange(400) % 7, "v": np.arange(400.0)})
    ddf = dd.from_pandas(df, npartitions=8)
    got = ddf.groupby("k").v.sum().compute(scheduler=e.get)
    pd.testing.assert_series_equal(got.sort_index(), df.groupby("k").v.sum().sort_index(),
                                   check_names=False)
    assert any(len(submits) > 1 for submits in parts_of_three)


def test_a_center_without_the_feature_gets_the_graph_in_one_submit(make_cluster,
                                                                    parts_of_three):
    from dist_protocol.features import FEATURES
    older = {"DIST_PROTOCOL_FEATURES": ",".join(f for f in FEATURES if f != "graph-parts")}
    cluster = make_cluster(n_workers=1, nthreads=2, env=older)
    x = da.arange(400, chunks=10)
    with cluster.executor() as executor:
        assert x.sum().compute(scheduler=executor.get) == np.arange(400).sum()
    assert parts_of_three and all(len(submits) == 1 for submits in parts_of_three)
    assert max(len(submits[0].tasks) for submits in parts_of_three) > 3


# -- a client that leaves between parts, at the protocol's level ---------------------------

class CenterInThread:
    """A center on its own event loop, as ``dcenter`` runs it (no worker: nothing runs)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.center = Center("127.0.0.1:0", heartbeat_timeout=30)
        self.call(self.center.start())

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.call(self.center.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def center():
    server = CenterInThread()
    yield server
    server.close()


def _tasks(first: int, count: int) -> list[TaskSpec]:
    """A chain of additions, each reading the one before (the first reads nothing)."""
    add = dumps_function(operator.add)
    tasks = []
    for i in range(first, first + count):
        previous = f"add-{i - 1}"
        inputs = [KeyRef(previous), 1] if i else [0, 1]
        tasks.append(TaskSpec(key=f"add-{i}", function=add, args=serialize((inputs, {})),
                              deps=[previous] if i else []))
    return tasks


async def _send_parts(address: str, *parts: Submit) -> None:
    comm = await connect(address, role="client", name="parts")
    assert "graph-parts" in comm.features
    comm.send(Session(id=1))
    assert isinstance(await comm.recv(), SessionReply)
    comm.send(*parts)
    comm.flush()
    await asyncio.sleep(0)
    return comm


def test_a_client_leaving_between_parts_leaves_nothing_at_the_center(center):
    state = center.center.state

    async def leave_midway():
        comm = await _send_parts(center.center.address,
                                 Submit(tasks=_tasks(0, 50), wanted=[], graph=1, more=True),
                                 Submit(tasks=_tasks(50, 50), wanted=[], graph=1, more=True))
        return comm

    comm = center.call(leave_midway())
    wait_until(lambda: len(state.tasks) == 100, timeout=30, what="both parts at the center")
    assert {ts.state for ts in state.tasks.values()} == {"released"}
    center.call(_close(comm))
    wait_until(lambda: not state.tasks and not state.graph_parts.pending
               and not state.clients, timeout=30, what="the parts to be forgotten")


def test_a_later_part_the_center_refuses_ends_the_connection_and_frees_the_earlier(center):
    state = center.center.state
    bad = TaskSpec(key="bad", function="operator:add", retries=-1)

    async def refused():
        comm = await _send_parts(center.center.address,
                                 Submit(tasks=_tasks(0, 50), wanted=[], graph=1, more=True))
        while len(state.tasks) < 50:
            await asyncio.sleep(0.01)
        comm.send(Submit(tasks=[*_tasks(50, 10), bad], wanted=["add-59"], graph=1))
        await asyncio.wait_for(comm.closed, 30)  # the center closes a malformed message's
        return comm.close_reason

    reason = center.call(refused())
    assert "retries" in (reason or ""), reason
    wait_until(lambda: not state.tasks and not state.graph_parts.pending
               and not state.clients, timeout=30, what="the parts to be forgotten")


async def _close(comm) -> None:
    comm.close()
    await comm.closed


# -- parts that run as they arrive (feature graph-parts-run) --------------------------------

def test_a_graph_that_cannot_be_packed_whole_leaves_nothing_behind(e, parts_of_three):
    graph = {("neg", i): (operator.neg, i) for i in range(40)}
    graph["pair"] = (operator.add, ("neg", 0), ("neg", 1))
    graph["total"] = (_total, list(graph), threading.Lock())  # last in order; cannot travel
    graph.update({("unread", i): (operator.neg, i) for i in range(20)})  # read by no task
    with pytest.raises(SerializationError, match="lock"):
        e.get(graph, "total")
    # Parts were sent before the node that cannot travel; the graph was ended there, and
    # what its first parts wanted for later was let go.
    sent = parts_of_three[-1]
    assert len(sent) > 1 and all(s.more for s in sent)
    first = [user_key(t.key) for part in sent for t in part.tasks]  # (story takes dask's keys)
    assert ("unread", 0) in first

    def forgotten(key):
        return [s["finish"] for s in e.story(key) if not s["worker"]][-1:] == ["forgotten"]

    wait_until(lambda: all(map(forgotten, first)) and not any(e.has_what().values()),
               timeout=30, what="the parts sent forgotten")
    del graph["total"]
    assert e.get(graph, ["pair", ("unread", 3)]) == (-1, -3)


def _total(values, lock):
    return sum(values)


def test_results_early_parts_keep_for_later_ones_are_let_go_after_the_graph(e,
                                                                               parts_of_three):
    x = da.random.RandomState(3).random((80, 80), chunks=(10, 10))
    y = (x + x.T).sum(axis=0)
    expected = y.compute(scheduler="sync")
    np.testing.assert_allclose(y.compute(scheduler=e.get), expected)
    sent = max(parts_of_three, key=len)
    assert len(sent) > 3 and all(s.more for s in sent[:-1]) and not sent[-1].more
    # The first parts want the results later parts read (the caller wants only the end),
    # and let them go once the graph is sent: nothing of it stays on the workers.
    outputs = {key for key in sent[-1].wanted or ()}
    early = {key for s in sent[:-1] for key in s.wanted or ()} - outputs
    assert early
    wait_until(lambda: not any(e.has_what().values()), timeout=30,
               what="nothing left on the workers")


class _PackedAfterEarlierParts:
    """An argument whose pickling (as its node is packed) waits until ``ready()`` holds, and
    records whether it did: it travels as 0."""

    def __init__(self, ready, timeout: float) -> None:
        self.ready, self.timeout, self.seen = ready, timeout, None

    def __reduce__(self):
        if self.seen is None:
            self.seen = wait_until_or_not(self.ready, self.timeout)
        return int, (0,)


def wait_until_or_not(ready, timeout: float) -> bool:
    try:
        wait_until(ready, timeout=timeout, what="earlier parts to run")
    except AssertionError:
        return False
    return True


def test_the_parts_sent_run_while_later_ones_are_packed(e, module_cluster, parts_of_three):
    # The first part goes out from the packing thread itself, the later ones through the
    # client's I/O thread: their tasks must run before the graph's last node is packed.
    graph = {("neg", i): (operator.neg, i) for i in range(40)}
    with Executor(module_cluster.address) as watcher:
        def several_parts_ran() -> bool:
            ran = {entry["key"] for entry in watcher.story(*graph)
                   if entry["finish"] == "memory" and not entry["worker"]}
            return len(ran) > 3  # more than the first part's three

        last = _PackedAfterEarlierParts(several_parts_ran, timeout=20)
        graph["total"] = (_total, list(graph), last)
        assert e.get(graph, "total") == -sum(range(40))
    assert last.seen is True
    assert len(parts_of_three[-1]) > 3


class _SlowToPack:
    """A node's argument that takes a moment to pickle, so that two threads packing graphs
    at once send their parts in turns."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce__(self):
        threading.Event().wait(0.001)
        return (int, (self.value,))


def _overlapping_graph(n: int, offset: int) -> dict:
    """``shared-i`` the same in every graph; ``own-OFFSET-i`` and ``total-OFFSET`` its own."""
    graph: dict = {}
    for i in range(n):
        graph[f"shared-{n}-{i}"] = (operator.add, _SlowToPack(i), 0)
        graph[f"own-{offset}-{n}-{i}"] = (operator.add, f"shared-{n}-{i}", offset)
    graph[f"total-{offset}-{n}"] = (sum, [f"own-{offset}-{n}-{i}" for i in range(n)])
    return graph


def test_threads_sending_graphs_that_share_keys_at_once_get_each_its_answer(e, monkeypatch):
    # Each thread packs its graph without the client's lock, and the parts of the two go out
    # in turns; a key one thread's graph holds may be in a part of the other's not sent yet,
    # or released by the other's previous round meanwhile.
    monkeypatch.setattr(dask_graphs, "FIRST_PART_TASKS", 3)
    offsets, rounds = (1, 1000, 7), 6
    start = threading.Barrier(len(offsets))
    answers: dict[tuple[int, int], object] = {}

    def run(offset: int) -> None:
        start.wait()
        for n in range(40, 40 + rounds):
            try:
                answers[offset, n] = e.get(_overlapping_graph(n, offset), f"total-{offset}-{n}")
            except Exception as exc:  # noqa: BLE001 -- reported below
                answers[offset, n] = exc

    threads = [threading.Thread(target=run, args=(offset,), daemon=True) for offset in offsets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a thread's get hung"
    assert answers == {(offset, n): sum(range(n)) + offset * n
                       for offset in offsets for n in range(40, 40 + rounds)}
