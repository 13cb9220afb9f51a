"""A Future hidden inside another object travels pickled, as its key: rebuilt as a future of
an executor of the process that unpickles it, which takes its own hold on the key at the
center; the submitting client keeps such futures until the task that carries them ends."""
import dataclasses
import gc
import pickle
import threading
import weakref

import pytest
from dist_client import current
from dist_client.core.state import ClientState
from dist_client.future import Future
from dist_client.pickled_futures import pin
from dist_client.tasks import TaskBuilder
from dist_protocol.messages import WantKeys, WhoHas
from dist_protocol.serialize import dumps_function

CENTER = "tcp://127.0.0.1:8786"
OTHER_CENTER = "tcp://127.0.0.1:9786"


@dataclasses.dataclass
class Holder:
    futures: list
    label: str = "held"


class Loop:
    in_loop_thread = False


class RecordingCore:
    """The part of a client's core that a pickled future meets: holds, what is sent, and
    the center's answers (``lost``: the keys it does not know)."""

    def __init__(self, address, lost=()):
        self.address = address
        self.state = ClientState()
        self.sent = []
        self.asked = []
        self.lost = set(lost)
        self.io = Loop()
        self.facade = None
        self.lock = threading.RLock()

    def hold(self, key, state=None):
        return self.state.hold(key, state)

    def unhold(self, key, state=None):
        self.state.unhold(key, state=state)

    def release_handle(self, state):
        self.state.unhold_released(state)

    def drop(self, state):
        self.state.dropped.append(state)  # counted off at the state's next call

    def future(self, key):
        return Future(key, self.facade)

    def center_has(self, feature):
        return feature == "datasets"

    def send(self, *messages):
        self.sent.extend(messages)

    async def ask(self, make):
        message = make(1)
        self.asked.append(message)
        for key in message.keys:
            if key in self.lost:  # the center's key-lost comes before its reply
                self.state.states[key].fail(LookupError(f"the center no longer knows {key}"),
                                            status="lost")

    def run(self, coro, timeout=None):
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        raise AssertionError("the fake's coroutines do not wait")


class FakeExecutor:
    asynchronous = False
    status = "running"

    def __init__(self, address=CENTER, lost=()):
        self.core = RecordingCore(address, lost)
        self.core.facade = self

    @property
    def address(self):
        return self.core.address


@pytest.fixture
def registered():
    """Executors registered as running ones, forgotten after the test."""
    made = []

    def make(address=CENTER, lost=()):
        executor = FakeExecutor(address, lost)
        current.register(executor)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.status = "closed"


def test_a_future_pickles_to_its_key_and_its_center():
    executor = FakeExecutor()
    future = Future("inc-1", executor)
    rebuild, args = future.__reduce__()
    assert args == ("inc-1", CENTER)


def test_unpickled_in_the_client_it_is_a_future_of_that_executor_without_asking(registered):
    executor = registered()
    future = Future("inc-1", executor)
    again = pickle.loads(pickle.dumps(Holder([future])))
    assert again.futures[0].key == "inc-1"
    assert again.futures[0].executor is executor
    assert again.futures[0].keystate is future.keystate
    assert executor.core.sent == []  # it holds the key already


def test_unpickled_by_another_client_it_takes_a_hold_at_the_center_before_returning(registered):
    maker = FakeExecutor()
    data = pickle.dumps(Holder([Future("inc-1", maker)]))
    other = registered()
    again = pickle.loads(data)
    assert again.futures[0].executor is other
    assert other.core.sent == [WantKeys(keys=["inc-1"])]
    assert other.core.asked == [WhoHas(id=1, keys=["inc-1"])]
    assert other.core.state.refs == {"inc-1": 1}
    del again
    gc.collect()
    assert other.core.state.refs == {}


def test_it_binds_to_an_executor_on_its_own_center_before_the_default(registered):
    same = registered(CENTER)
    registered(OTHER_CENTER)  # the most recent: the default
    data = pickle.dumps(Future("inc-1", FakeExecutor()))
    assert pickle.loads(data).executor is same


def test_a_future_of_another_cluster_is_refused_clearly(registered):
    data = pickle.dumps(Future("inc-1", FakeExecutor(OTHER_CENTER)))
    here = registered(CENTER, lost={"inc-1"})
    with pytest.raises(ValueError, match=r"inc-1 belongs to the cluster whose center is at "
                                         r"tcp://127.0.0.1:9786.*only valid on the cluster"):
        pickle.loads(data)
    gc.collect()
    assert here.core.state.refs == {}  # the hold it took is given back


def test_with_no_executor_running_unpickling_says_what_to_do():
    data = pickle.dumps(Future("inc-1", FakeExecutor("tcp://10.9.8.7:1")))
    with pytest.raises(ValueError, match=r"no running Executor.*Executor\(address\)"):
        pickle.loads(data)


def test_a_released_future_cannot_be_pickled():
    future = Future("inc-1", FakeExecutor())
    future.release()
    with pytest.raises(TypeError, match="released"):
        pickle.dumps(future)


def test_futures_in_plain_containers_are_values_and_hidden_ones_travel_as_futures():
    executor = FakeExecutor()
    plain, hidden = Future("plain-1", executor), Future("hidden-1", executor)
    pickled: list = []
    spec = TaskBuilder.build("t-1", dumps_function(len), ([plain], Holder([hidden])), {},
                             TaskBuilder.options(), pickled_futures=pickled)
    assert spec.deps == ["plain-1"]  # the worker gets its value
    assert pickled == [hidden]


def test_the_client_keeps_pickled_futures_until_their_task_settles():
    executor = FakeExecutor()
    task = Future("t-1", executor)
    hidden = Future("hidden-1", executor)
    watch = weakref.ref(hidden)
    pin(task, [hidden])
    del hidden
    gc.collect()
    assert watch() is not None and executor.core.state.refs["hidden-1"] == 1
    task.keystate.finish(8, "int", None)
    gc.collect()
    assert watch() is None and "hidden-1" not in executor.core.state.refs


def test_a_closure_over_a_future_is_recorded_with_its_function():
    builder = TaskBuilder()
    hidden = Future("hidden-1", FakeExecutor())

    def read():
        return hidden.result()

    builder.function_payload(read)
    assert builder.futures_in_function(read) == [hidden]
    assert builder.futures_in_function(len) == []
