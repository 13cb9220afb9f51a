"""The queue of ready tasks: highest priority first, then arrival, whatever order they came in."""
from hypothesis import given
from hypothesis import strategies as st

from dist_center.ready import ReadyQueue


def test_in_turn_and_out_of_turn_pushes_pop_by_priority_then_arrival():
    queue = ReadyQueue()
    queue.push("a", 0, 1)
    queue.push("b", 0, 2)
    queue.push("c", -1, 3)  # lower priority: still in turn
    queue.push("early", 0, 0)  # came back (arrived before a and b): out of turn
    queue.push("urgent", 5, 4)  # a higher priority than the last: out of turn

    assert list(queue) == ["urgent", "early", "a", "b", "c"]
    assert len(queue) == 5 and "early" in queue and "c" in queue and "zz" not in queue
    assert [queue.pop() for _ in range(5)] == ["urgent", "early", "a", "b", "c"]
    assert not queue and len(queue) == 0


def test_first_names_the_next_queued_tasks_and_leaves_the_queue_as_it_was():
    left = {"b"}
    queue = ReadyQueue(lambda key: key not in left)
    for order, key in enumerate("abcd"):
        queue.push(key, 0, order)

    assert queue.first(2) == ["a", "c"]  # b left the queue other than by a pop: skipped
    queue.push("urgent", 5, 9)
    assert queue.first(3) == ["urgent", "a", "c"]
    assert [queue.pop() for _ in range(5)] == ["urgent", "a", "b", "c", "d"]


# (priority, pop one first?) per push; arrival numbers are unique, as a task's are.
operations = st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 10 ** 6), st.booleans()),
                      max_size=60)


@given(operations)
def test_pops_follow_a_sorted_reference(ops):
    queue = ReadyQueue()
    reference: list[tuple[int, int, str]] = []
    seen: set[int] = set()
    for priority, order, pop_first in ops:
        if pop_first and reference:
            reference.sort()
            assert queue.pop() == reference.pop(0)[2]
        if order in seen:
            continue
        seen.add(order)
        queue.push(f"k{order}", priority, order)
        reference.append((-priority, order, f"k{order}"))
    assert list(queue) == [key for _, _, key in sorted(reference)]
    assert len(queue) == len(reference)
    for count in (1, 5, len(reference) + 1):
        assert queue.first(count) == [key for _, _, key in sorted(reference)][:count]
    assert [queue.pop() for _ in range(len(reference))] == [key for _, _, key in sorted(reference)]
    assert not queue


def test_entries_of_tasks_that_left_the_queue_do_not_push_later_ones_out_of_turn():
    queued = {"old1", "old2", "new1", "new2"}
    queue = ReadyQueue(lambda key: key in queued)
    queue.push("old1", -10, 1)
    queue.push("old2", -11, 2)
    queued -= {"old1", "old2"}  # sent along with their partners: their entries stay behind
    queue.push("new1", 0, 3)  # a later graph's first task, of a higher priority
    queue.push("new2", -1, 4)

    assert list(queue) == ["new1", "new2"]
    assert queue.pop() == "new1" and queue.pop() == "new2" and not queue


def test_an_out_of_turn_task_behind_a_queued_one_still_pops_first():
    queue = ReadyQueue(lambda key: True)
    queue.push("low", -10, 1)
    queue.push("high", 0, 2)
    assert [queue.pop(), queue.pop()] == ["high", "low"]


class Arrival(int):
    """An arrival number that counts how often the queue compares it."""
    comparisons = 0

    def __lt__(self, other):
        Arrival.comparisons += 1
        return int(self) < int(other)


def test_first_looks_at_the_top_of_the_out_of_turn_tasks_not_at_all_of_them():
    # A dask graph's roots come out of turn (by priority, highest last): a worker given a
    # task looks at the first few queued, and must not sort the hundreds of thousands.
    left = {"k9999"}
    queue = ReadyQueue(lambda key: key not in left)
    for order in range(10_000):
        queue.push(f"k{order}", 0, Arrival(10_000 - order))
    Arrival.comparisons = 0
    assert queue.first(3) == ["k9998", "k9997", "k9996"]
    assert Arrival.comparisons < 500
    assert [queue.pop() for _ in range(3)] == ["k9998", "k9997", "k9996"]  # left as it was
