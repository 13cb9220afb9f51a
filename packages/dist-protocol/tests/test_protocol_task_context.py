"""``slot_given_back``: a task's wait gives its thread's slot back; any other wait is left as
it is, without anything made per wait."""
from __future__ import annotations

import threading

import pytest

from dist_protocol import task_context
from dist_protocol.task_context import TaskContext

pytestmark = pytest.mark.timeout(30)


class Slots:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.seceded = False

    def secede(self, key: str) -> None:
        self.calls.append(("secede", key))

    def rejoin(self, key: str) -> None:
        self.calls.append(("rejoin", key))

    def has_seceded(self) -> bool:
        return self.seceded


def context(slots: Slots, on_loop: bool = False) -> TaskContext:
    return TaskContext(key="k", worker="tcp://w:1", center="tcp://c:1", token=None,
                       ssl_context=None, slots=slots, on_loop=on_loop)  # type: ignore[arg-type]


def test_a_task_s_context_is_its_thread_s_alone():
    seen: list[TaskContext | None] = []
    previous = task_context.set_current(context(Slots()))
    try:
        other = threading.Thread(target=lambda: seen.append(task_context.current()))
        other.start()
        other.join(10)
        assert seen == [None]  # a thread that never ran a task
        assert task_context.current() is not None
    finally:
        assert task_context.set_current(previous) is not None
    assert task_context.current() is previous is None


def test_a_wait_outside_a_task_makes_nothing_and_gives_nothing_back():
    assert task_context.current() is None
    first = task_context.slot_given_back()
    assert task_context.slot_given_back() is first  # one shared no-op, not one per wait
    with first:
        pass


def test_a_task_s_wait_gives_its_slot_back_and_takes_one_again():
    slots = Slots()
    previous = task_context.set_current(context(slots))
    try:
        with pytest.raises(ValueError, match="the wait failed"), task_context.slot_given_back():
            assert slots.calls == [("secede", "k")]
            raise ValueError("the wait failed")
        assert slots.calls == [("secede", "k"), ("rejoin", "k")]
    finally:
        task_context.set_current(previous)


@pytest.mark.parametrize("on_loop, seceded", [(True, False), (False, True)])
def test_a_task_on_the_loop_or_seceded_already_keeps_its_wait_as_it_is(on_loop, seceded):
    slots = Slots()
    slots.seceded = seceded
    previous = task_context.set_current(context(slots, on_loop=on_loop))
    try:
        with task_context.slot_given_back():
            pass
        assert slots.calls == []
    finally:
        task_context.set_current(previous)
