"""A map's futures made and dropped in bulk (``ClientState.hold_many``, ``Future.of_held``,
``ClientState.dropped``) leave the client's state as one Future at a time does."""
import gc
import threading

from dist_client.core.keystate import KeyState
from dist_client.core.state import ClientState
from dist_client.future import Future
from dist_protocol.messages import Release, Submit

KEYS = ["a", "b", "a", "c"]  # a key twice: two handles, as a map of a repeated call makes


def snapshot(state: ClientState) -> tuple:
    """What the keys held and the center's outbox say, to compare two states whole."""
    return ({key: (s.status, s.refs) for key, s in state.states.items()},
            state.take_outbox())


def test_hold_many_holds_as_hold_does_for_each_key():
    one, bulk = ClientState(), ClientState()
    singly = [one.hold(key) for key in KEYS]
    together = bulk.hold_many(KEYS)
    assert [s.key for s in together] == KEYS
    assert together[0] is together[2]  # one state a key, shared by its handles
    assert snapshot(one) == snapshot(bulk) == ({"a": ("pending", 2), "b": ("pending", 1),
                                                 "c": ("pending", 1)}, [])
    assert one.refs == bulk.refs == {"a": 2, "b": 1, "c": 1}
    assert [s.refs for s in singly] == [s.refs for s in together]


def test_drops_counted_off_release_as_unhold_does():
    one, bulk = ClientState(), ClientState()
    one.hold_many(KEYS)
    held = bulk.hold_many(KEYS)
    for state in held[:3]:  # a, b and a: a and b let go, c still held
        bulk.dropped.append(state)
    for key in KEYS[:3]:
        one.unhold(key)
    assert bulk.has_outbox()  # the state's next call counts the drops off first
    assert snapshot(one) == snapshot(bulk) == ({"c": ("pending", 1)},
                                               [Release(keys=["b", "a"])])


def test_drops_are_counted_off_before_any_decision_that_reads_the_keys():
    s = ClientState()
    [state] = s.hold_many(["x"])
    s.dropped.append(state)
    assert not s.holds("x") and s.held() == [] and s.refs == {}
    # A submit of the key again is new work, after the release the drop queued.
    assert s.keys_to_submit(["x"]) == ["x"]
    s.queue(Submit(tasks=[], wanted=["x"]))
    assert s.take_outbox() == [Release(keys=["x"]), Submit(tasks=[], wanted=["x"])]


def test_a_drop_while_not_connected_forgets_the_key_without_a_release():
    s = ClientState()
    [state] = s.hold_many(["x"])
    s.releasing = False  # a center forgets a client's keys with its connection
    s.dropped.append(state)
    assert s.held() == [] and s.take_outbox() == []


def test_a_drop_of_a_key_held_again_meanwhile_keeps_it():
    """The key is held again before the drop is counted off: the new handle keeps it, and
    nothing is released."""
    s = ClientState()
    [state] = s.hold_many(["x"])
    s.dropped.append(state)
    again = s.hold("x")  # counts the drop off first: x was let go, and is held anew
    assert again is not state and s.refs == {"x": 1}
    assert s.take_outbox() == [Release(keys=["x"])]


class DroppingCore:
    """The part of a client's core a Future meets, counting drops off as the real one does
    (at the state's next call)."""

    def __init__(self):
        self.state = ClientState()

    def hold(self, key, state=None):
        return self.state.hold(key, state)

    def unhold(self, key, state=None):
        self.state.unhold(key, state=state)

    def release_handle(self, state):
        self.state.unhold_released(state)

    def drop(self, state):
        self.state.dropped.append(state)


class Facade:
    def __init__(self):
        self.core = DroppingCore()


def test_a_future_made_of_one_held_state_is_a_future_as_made_alone():
    facade = Facade()
    made = Future.of_held_one("b", facade.core.state.hold("b"), facade)
    alone = Future("b", facade)
    assert type(made) is Future and made.name == "b" and made.key == "b"
    assert made.executor is facade and made.status == "pending"
    assert made._stdlib_waiters is None and made._core is facade.core
    assert made.keystate is alone.keystate
    assert facade.core.state.refs == {"b": 2}
    del made, alone
    gc.collect()
    assert facade.core.state.refs == {} and facade.core.state.take_outbox() == [
        Release(keys=["b"])]


def test_futures_made_of_held_states_are_futures_as_made_one_at_a_time():
    facade = Facade()
    states = facade.core.state.hold_many(KEYS)
    made = Future.of_held(KEYS, states, facade)
    alone = Future("b", facade)
    for future, key in zip(made, KEYS):
        assert type(future) is Future and future.name == key and future.key == key
        assert future.executor is facade and future.status == "pending"
        assert future._stdlib_waiters is None and future._core is facade.core
    assert made[1].keystate is alone.keystate
    assert facade.core.state.refs == {"a": 2, "b": 2, "c": 1}
    del made, alone, future
    gc.collect()
    assert facade.core.state.refs == {} and facade.core.state.take_outbox() == [
        Release(keys=["a", "b", "c"])]


def test_futures_dropped_from_many_threads_are_each_counted_off_once():
    facade = Facade()
    state = facade.core.state
    made = Future.of_held(["k"] * 4000, state.hold_many(["k"] * 4000), facade)
    parts = [made[i::4] for i in range(4)]
    del made
    go = threading.Barrier(4)

    def drop(part: list) -> None:
        go.wait(timeout=30)
        part.clear()
    threads = [threading.Thread(target=drop, args=(part,)) for part in parts]
    del parts
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert state.refs == {} and state.take_outbox() == [Release(keys=["k"])]


def test_a_state_made_by_the_state_s_factory_counts_its_handles():
    made = []

    def make(key: str) -> KeyState:
        made.append(key)
        return KeyState(key)
    s = ClientState(make)
    s.hold_many(["p", "q", "p"])
    assert made == ["p", "q"] and s.refs == {"p": 2, "q": 1}
