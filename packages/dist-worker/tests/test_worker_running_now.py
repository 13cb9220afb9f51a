"""What a worker answers when asked what it runs now (``worker-query``)."""
import logging
import threading

from dist_protocol.messages import WorkerQuery, WorkerQueryReply
from dist_worker import running_now
from dist_worker.server import Worker


def test_the_executing_keys_asked_for_are_answered_from_the_state():
    query = WorkerQuery(id=4, what="executing", keys=["a", "z"])
    assert running_now.answer(query, "w1", {"a", "b"}) == WorkerQueryReply(
        id=4, answers={"w1": ["a"]})
    assert running_now.answer(WorkerQuery(id=5, what="executing"), "w1", {"b", "a"}) == \
        WorkerQueryReply(id=5, answers={"w1": ["a", "b"]})


def test_threads_that_run_no_task_have_no_stack_to_give():
    ready = threading.Event()
    release = threading.Event()
    thread = threading.Thread(target=lambda: (ready.set(), release.wait(10)))
    thread.start()
    try:
        assert ready.wait(10)
        assert running_now.stacks() == {}
    finally:
        release.set()
        thread.join(10)


def test_a_worker_made_inside_a_program_leaves_its_logging_alone():
    before = list(logging.getLogger().handlers)
    Worker("127.0.0.1:1")
    assert logging.getLogger().handlers == before
