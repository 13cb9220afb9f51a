"""What the workers run now, asked for a client: the center passes the question on to the
workers that agreed the feature and answers once each has answered or left."""
from dist_protocol.messages import WorkerQuery, WorkerQueryReply

ANSWERING = frozenset({"worker-query"})


def test_the_center_gathers_each_workers_answer_and_answers_without_those_that_left(center):
    center.join("w1", features=ANSWERING)
    center.join("w2", features=ANSWERING)
    center.join("old")  # an older worker: not asked
    out = center.client_sent(WorkerQuery(id=7, what="executing", keys=["x"]))
    assert out == [("w1", WorkerQuery(id=1, what="executing", keys=["x"])),
                   ("w2", WorkerQuery(id=1, what="executing", keys=["x"]))]
    assert center.worker_sent("w1", WorkerQueryReply(id=1, answers={"w1": ["x"]})) == []
    assert center.worker_sent("w1", WorkerQueryReply(id=1, answers={"w1": []})) == []  # once
    out = center.leave("w2")
    assert ("alice", WorkerQueryReply(id=7, answers={"w1": ["x"]})) in out


def test_a_query_names_its_workers_and_with_none_to_ask_is_answered_at_once(center):
    center.join("w1", features=ANSWERING)
    center.join("w2", features=ANSWERING)
    assert center.client_sent(WorkerQuery(id=3, what="logs", workers=["w2"], n=5)) == [
        ("w2", WorkerQuery(id=1, what="logs", n=5))]
    assert center.client_sent(WorkerQuery(id=4, what="logs", workers=["gone"])) == [
        ("alice", WorkerQueryReply(id=4, answers={}))]


def test_the_center_gives_its_own_log_lines_and_asks_no_worker_for_them(center):
    center.join("w1", features=ANSWERING)
    center.state.worker_queries.own_logs = lambda n: [["INFO", "a"], ["WARNING", "b"]][-n:]
    assert center.client_sent(WorkerQuery(id=2, what="center-logs", n=1)) == [
        ("alice", WorkerQueryReply(id=2, answers={"": [["WARNING", "b"]]}))]


def test_a_client_that_left_is_not_answered(center):
    center.connect("bob")
    center.join("w1", features=ANSWERING)
    center.client_sent(WorkerQuery(id=2, what="call-stack"), "bob")
    center.disconnect("bob")
    assert center.worker_sent("w1", WorkerQueryReply(id=1, answers={"w1": {}})) == []
    assert center.state.worker_queries.pending == {}


def test_a_center_made_inside_a_program_leaves_its_logging_alone():
    """Only ``dcenter`` keeps its log lines: a handler on the root logger of a user's program
    would make its later ``logging.basicConfig()`` do nothing."""
    import logging

    from dist_center.server import Center
    before = list(logging.getLogger().handlers)
    center = Center("127.0.0.1:0")
    assert logging.getLogger().handlers == before
    assert center.state.worker_queries.own_logs(5) == []
