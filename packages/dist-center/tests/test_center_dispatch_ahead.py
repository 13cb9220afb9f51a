"""Dispatch ahead: a task whose inputs are all held by or being computed on one worker is sent
there before they finish, to workers that announced the feature ``dispatch-ahead``; taken back
whenever an input does not finish there."""
from __future__ import annotations

import pytest
from dist_center import placement
from dist_center.events import WorkerSent
from dist_protocol.messages import (ComputeTask, FreeKeys, KeyCancelled, StealReply,
                                    StealRequest, TaskErred, TaskFinished, TaskSpec)
from dist_protocol.serialize import Payload

AHEAD = frozenset({"dispatch-ahead"})
REFERENCE_BOUND = placement.AHEAD_PER_THREAD


@pytest.fixture(autouse=True)
def lines_of_four(monkeypatch):
    """The transcripts here are written for a bound of four tasks ahead per thread and lines
    of four: short enough to read whole. The reference bound is the test of its own below."""
    monkeypatch.setattr(placement, "AHEAD_PER_THREAD", 4)


def computes(out) -> list[tuple[str, str, list[str] | None]]:
    return [(who, m.key, m.ahead) for who, m in out if isinstance(m, ComputeTask)]


def freed(out) -> list[tuple[str, str]]:
    return [(who, key) for who, m in out if isinstance(m, FreeKeys) for key in m.keys]


def chain(center, length: int, **fields) -> list[str]:
    keys = [f"link-{i}" for i in range(length)]
    center.submit(center.spec(keys[0]),
                  *(center.spec(key, before, **fields) for before, key in zip(keys, keys[1:])),
                  wanted=[keys[-1]])
    return keys


def test_the_reference_center_keeps_a_line_of_eight_per_thread(center, monkeypatch):
    monkeypatch.setattr(placement, "AHEAD_PER_THREAD", REFERENCE_BOUND)
    assert REFERENCE_BOUND == 8
    center.join("w1", features=AHEAD)
    keys = chain(center, 12)
    assert [center.state_of(k) for k in keys] == ["processing"] * 9 + ["waiting"] * 3
    assert center.state.workers["w1"].ahead == set(keys[1:9])
    assert [key for _, key, _ in computes(center.finished("w1", keys[0]))] == [keys[9]]


def test_the_next_links_of_a_chain_go_with_the_running_one_and_start_without_a_round_trip(
        center):
    center.join("w1", features=AHEAD)
    out = center.submit("a", center.spec("b", "a"), center.spec("c", "b"), wanted=["c"])

    # b waits ahead of a, and c ahead of b, which itself waits there.
    assert computes(out) == [("w1", "a", None), ("w1", "b", ["a"]), ("w1", "c", ["b"])]
    assert out[1][1].who_has == {"a": []} and out[2][1].who_has == {"b": []}
    assert center.state_of("b") == center.state_of("c") == "processing"
    assert center.state.workers["w1"].ahead == {"b", "c"}

    out = center.finished("w1", "a")
    # b started when a finished, c still waits: nothing is sent again.
    assert computes(out) == [] and not freed(out)  # (a stays until b, which reads it, is done)
    assert center.state.workers["w1"].ahead == {"c"}
    out = center.finished("w1", "b")
    assert computes(out) == [] and freed(out) == [("w1", "a")]
    assert center.state.workers["w1"].ahead == set()
    center.finished("w1", "c")
    assert center.state_of("c") == "memory"


def test_a_line_run_through_is_answered_with_its_inputs_freed_then_the_next_links_in_a_row(
        center):
    """The worker runs a line back to back and reports the finishes in one batch; the answer
    frees the inputs no longer read, in one message ahead of the next links, which go in a
    row (one column block on the wire) rather than each after a free."""
    center.join("w1", features=AHEAD)
    keys = [f"link-{i}" for i in range(12)]
    center.submit(center.spec(keys[0]),
                  *(center.spec(key, before) for before, key in zip(keys, keys[1:])))
    center.release(*keys[:-1])  # (the client keeps the last link's future only)
    assert computes(center.finished("w1", keys[0])) == [("w1", keys[5], [keys[4]])]
    out = center(*(WorkerSent("w1", TaskFinished(key=key, nbytes=8, type="int"))
                   for key in keys[1:6]))
    assert [(type(m).__name__, m.keys if isinstance(m, FreeKeys) else m.key)
            for _, m in out] == [("FreeKeys", keys[:5]),
                                 *(("ComputeTask", key) for key in keys[6:11])]


def test_a_worker_that_did_not_announce_the_feature_gets_each_task_once_its_inputs_are_held(
        center):
    center.join("w1")
    keys = chain(center, 3)
    assert center.processing("w1") == [keys[0]]
    assert computes(center.finished("w1", keys[0])) == [("w1", keys[1], None)]


def test_a_task_submitted_while_its_input_runs_is_sent_ahead_at_once(center):
    center.join("w1", features=AHEAD)
    center.submit("a")
    out = center.submit(center.spec("b", "a"))
    assert computes(out) == [("w1", "b", ["a"])]


def test_a_line_of_at_most_four_waits_ahead_behind_each_running_task(center):
    center.join("w1", nthreads=2, features=AHEAD)
    out = center.submit(*(center.spec(f"a{i}-0", workers=["w1"]) for i in range(2)),
                        *(center.spec(f"a{i}-{j}", f"a{i}-{j - 1}")
                          for i in range(2) for j in range(1, 8)))
    sent = [key for _, key, ahead in computes(out) if ahead]
    assert sorted(sent) == sorted(f"a{i}-{j}" for i in range(2) for j in range(1, 5))
    assert {center.state_of(f"a{i}-{j}") for i in range(2) for j in range(5, 8)} == {"waiting"}
    assert len(center.state.workers["w1"].ahead) == 8
    # A third chain on the full worker waits at the center, link by link.
    out = center.submit(center.spec("b-0", workers=["w1"]), center.spec("b-1", "b-0"))
    assert computes(out) == [("w1", "b-0", None)]
    assert center.state_of("b-1") == "waiting"


def test_an_input_read_by_several_tasks_sends_none_ahead(center):
    # A shuffle's pieces, a shared value: placement spreads its readers once it is done.
    center.join("w1", nthreads=2, features=AHEAD)
    out = center.submit("a", *(center.spec(f"b{i}", "a") for i in range(4)))
    assert [key for _, key, ahead in computes(out) if ahead] == []
    out = center.finished("w1", "a")
    assert sorted(key for _, key, _ in computes(out)) == ["b0", "b1", "b2", "b3"]


def test_a_line_waiting_ahead_is_at_most_four_long(center):
    center.join("w1", nthreads=4, features=AHEAD)
    keys = chain(center, 8)
    assert [center.state_of(k) for k in keys] == ["processing"] * 5 + ["waiting"] * 3
    assert center.state.workers["w1"].ahead == set(keys[1:5])


def test_inputs_on_two_workers_or_held_elsewhere_keep_a_task_waiting(center):
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    center.submit(center.spec("x", workers=["w2"]))
    center.finished("w2", "x")
    center.submit(center.spec("a", workers=["w1"]), center.spec("y", workers=["w2"]))
    out = center.submit(center.spec("b", "a", "x"), center.spec("c", "a", "y"))
    assert computes(out) == []
    assert center.state_of("b") == center.state_of("c") == "waiting"


def test_an_input_that_errs_frees_the_waiting_task_which_errs_with_it(center, match):
    center.join("w1", features=AHEAD)
    center.submit("a", center.spec("b", "a"), wanted=["b"])
    out = center.erred("w1", "a")
    assert freed(out) == [("w1", "b")]
    assert computes(out) == []
    assert ("alice", match(TaskErred, key="b", exception_type="ZeroDivisionError")) in out
    assert center.state_of("b") == "erred"
    assert center.state.workers["w1"].ahead == set()


def test_an_input_retried_takes_the_waiting_task_back_and_sends_it_again_after(center):
    center.join("w1", features=AHEAD)
    center.submit(center.spec("a", retries=1), center.spec("b", "a"), wanted=["b"])
    out = center.erred("w1", "a")
    # Freed first, then a runs again and b is sent ahead of it again: in that order.
    assert [(type(m).__name__, getattr(m, "keys", None) or m.key) for _, m in out] == [
        ("FreeKeys", ["b"]), ("ComputeTask", "a"), ("ComputeTask", "b")]
    center.finished("w1", "a")
    center.finished("w1", "b")
    assert center.state_of("b") == "memory"


def test_a_dead_worker_s_waiting_tasks_are_placed_again_and_not_counted_as_suspects(center):
    center.join("w1", features=AHEAD)
    center.submit("a", center.spec("b", "a"), wanted=["b"])
    center.join("w2", features=AHEAD)
    out = center.leave("w1", reason="killed")
    assert computes(out) == [("w2", "a", None), ("w2", "b", ["a"])]
    assert center.task("a").died_on == ("w1",) and center.task("b").died_on == ()


def test_a_dead_worker_without_the_feature_elsewhere_gets_today_s_order(center):
    center.join("w1", features=AHEAD)
    center.submit("a", center.spec("b", "a"), wanted=["b"])
    center.join("w2")
    out = center.leave("w1", reason="killed")
    assert computes(out) == [("w2", "a", None)]
    assert center.state_of("b") == "waiting"


def test_a_stolen_input_takes_the_waiting_task_back_to_wait_at_the_center(center):
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    center.submit("a", center.spec("b", "a"), wanted=["b"])
    victim = center.processing_on("a")
    thief = "w2" if victim == "w1" else "w1"
    center.state.stealing["a"] = thief
    out = center.worker_sent(victim, StealReply(keys=["a"]))
    assert freed(out) == [(victim, "b")]
    assert computes(out) == [(thief, "a", None), (thief, "b", ["a"])]


def test_a_waiting_task_given_up_waits_at_the_center_for_its_input(center):
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    center.submit("a", center.spec("b", "a"), wanted=["b"])
    where = center.processing_on("b")
    center.state.stealing["b"] = None  # as a paused or retiring worker is asked
    out = center.worker_sent(where, StealReply(keys=["b"]))
    assert computes(out) == []
    assert center.state_of("b") == "waiting" and set(center.task("b").waiting_on) == {"a"}
    out = center.finished(where, "a")
    assert computes(out) == [(where, "b", None)]


def test_stealing_never_asks_for_a_task_waiting_ahead(center):
    center.join("w1", features=AHEAD)
    center.submit(center.spec("a", workers=["w1"]), center.spec("b", "a"), wanted=["b"])
    out = center.join("w2", features=AHEAD)
    assert not [m for _, m in out if isinstance(m, StealRequest)]


def test_a_paused_worker_is_asked_for_its_waiting_tasks_and_gets_no_more(center):
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    center.submit("a", center.spec("b", "a"), wanted=["b"])
    where = center.processing_on("a")
    out = center.heartbeat(where, paused=True)
    # Every task not started is asked for; a runs and is kept.
    assert [m.keys for _, m in out if isinstance(m, StealRequest)] == [["a", "b"]]
    center.worker_sent(where, StealReply(keys=["b"], kept=["a"]))
    assert center.state_of("b") == "waiting"
    center.submit(center.spec("c", "a"))
    assert center.state_of("c") == "waiting"


def test_above_its_memory_target_a_worker_is_sent_nothing_ahead(center):
    center.join("w1", features=AHEAD)
    center.heartbeat("w1", managed=900, memory_limit=1000)
    out = center.submit("a", center.spec("b", "a"))
    assert computes(out) == [("w1", "a", None)]


def test_tasks_with_resources_restrictions_or_actors_are_not_sent_ahead(center):
    center.join("w1", features=AHEAD, resources={"GPU": 1})
    center.join("w2", features=AHEAD)
    for reader in (dict(resources={"GPU": 1}), dict(workers=["w2"]), dict(actor=True)):
        key = f"a-{len(center.state.tasks)}"
        out = center.submit(center.spec(key, workers=["w1"]),
                            center.spec(f"reader-of-{key}", key, **reader))
        assert computes(out) == [("w1", key, None)]
    center.join("w3", features=AHEAD)
    out = center.submit(center.spec("a", workers=["w3"]), center.spec("plain", "a"))
    assert computes(out) == [("w3", "a", None), ("w3", "plain", ["a"])]


def test_a_restriction_that_names_the_worker_allows_it(center):
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    out = center.submit(center.spec("a", workers=["w1"]), center.spec("b", "a", workers=["w1"]))
    assert computes(out) == [("w1", "a", None), ("w1", "b", ["a"])]


def test_cancelling_a_waiting_task_frees_it_and_keeps_the_running_input_if_wanted(center):
    center.join("w1", features=AHEAD)
    center.submit("a", center.spec("b", "a"))
    out = center.cancel("b")
    assert freed(out) == [("w1", "b")]
    assert ("alice", KeyCancelled(key="b")) in out
    assert center.state_of("a") == "processing"
    assert center.state.workers["w1"].ahead == set()


def test_cancel_of_pending_tasks_only_counts_a_task_waiting_ahead_as_not_started(center):
    from dist_protocol.messages import Cancel
    center.join("w1", features=AHEAD)
    center.submit("a", center.spec("b", "a"))
    out = center.client_sent(Cancel(keys=["a", "b"], pending_only=True))
    assert [m.key for _, m in out if isinstance(m, KeyCancelled)] == ["b"]
    assert center.state_of("a") == "processing" and center.state_of("b") == "forgotten"


def test_releasing_everything_frees_both(center):
    center.join("w1", features=AHEAD)
    center.submit("a", center.spec("b", "a"))
    out = center.release("a", "b")
    assert sorted(freed(out)) == [("w1", "a"), ("w1", "b")]
    assert center.state.tasks == {}


def test_an_input_held_elsewhere_first_takes_the_waiting_task_back_to_where_it_is(center):
    # A worker registering again with the value finishes the input elsewhere: the worker
    # computing it is told to drop it, so the task waiting there for it is taken back too.
    center.join("w1", features=AHEAD)
    center.submit("a", center.spec("b", "a"), wanted=["b"])
    out = center.join("w2", features=AHEAD, keys={"a": 8})
    assert ("w1", "a") in freed(out) and ("w1", "b") in freed(out)
    assert computes(out) == [("w2", "b", None)]


def test_a_lost_second_input_takes_the_waiting_task_back(center):
    center.join("w1", nthreads=2, features=AHEAD)
    center.join("w2", features=AHEAD)
    center.submit(center.spec("x", workers=["w1"]))
    center.finished("w1", "x")
    out = center.submit(center.spec("a", workers=["w1"]), center.spec("b", "a", "x"),
                        wanted=["b"])
    assert computes(out) == [("w1", "a", None), ("w1", "b", ["a"])]
    out = center.missing("w1", "x", "w1")  # w1 turns out not to have x
    # b is taken back; x is computed again on w1, and b sent ahead of both there.
    assert ("w1", "b") in freed(out)
    assert computes(out) == [("w1", "x", None), ("w1", "b", ["a", "x"])]
    assert [type(m).__name__ for _, m in out][-2:] == ["ComputeTask", "ComputeTask"]


def test_a_long_chain_runs_to_its_end_every_link_sent_ahead_of_its_input(center):
    center.join("w1", features=AHEAD)
    keys = chain(center, 200)
    sent = {}
    for key in keys:
        assert len(center.state.workers["w1"].ahead) <= 4
        for _, computed, ahead in computes(center.finished("w1", key)):
            sent[computed] = ahead
    # Every link after the first five was sent as its input started, one per finish.
    assert sent == {keys[i]: [keys[i - 1]] for i in range(5, 200)}
    assert center.state_of(keys[-1]) == "memory"
    assert {ts.state for key, ts in center.state.tasks.items() if key != keys[-1]} == {
        "released"}  # (lineage of the result, as always)


def test_an_actor_input_and_payload_arguments_travel_unchanged(center):
    center.join("w1", features=AHEAD)
    args = Payload("msgpack", [b"\x92\x90\x80"])
    out = center.submit("a", TaskSpec(key="b", function="operator:add", deps=["a"], args=args))
    (_, message), = [(w, m) for w, m in out if isinstance(m, ComputeTask) and m.key == "b"]
    assert message.args is args and message.ahead == ["a"]


def test_tasks_waiting_ahead_do_not_make_their_worker_look_busy_to_stealing(center):
    # A diamond on two workers of two threads: the shared input and the two tasks sent ahead
    # of it are no backlog. Counted as one, the idle worker stole the input, the tasks went
    # ahead there, and the first stole it back, for ever.
    center.join("w1", nthreads=2, features=AHEAD)
    center.join("w2", nthreads=2, features=AHEAD)
    out = center.submit(center.spec("d", "b", "c"), center.spec("b", "s"), center.spec("c", "s"),
                        center.spec("s"), wanted=["d"])
    assert computes(out) == [("w1", "s", None)]  # (s has two readers: none goes ahead)
    assert not [m for _, m in out if isinstance(m, StealRequest)]
    out = center.finished("w1", "s")
    assert computes(out) == [("w1", "b", None), ("w1", "c", None), ("w1", "d", ["b", "c"])]
    assert not [m for _, m in out if isinstance(m, StealRequest)]
    center.finished("w1", "b")
    center.finished("w1", "c")
    assert center.finished("w1", "d")[0][1].key == "d"


def test_a_worker_with_a_backlog_is_sent_nothing_ahead(center):
    # Its threads are taken by tasks beyond the input: another worker might start the task
    # first, so placement decides once the input is done, as for any task.
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    out = center.submit(*(center.spec(f"busy{i}", workers=["w1"]) for i in range(2)),
                        center.spec("a", workers=["w1"]), center.spec("b", "a"))
    assert [key for _, key, ahead in computes(out) if ahead] == []
    assert center.state_of("b") == "waiting"


# -- a line of tasks waiting ahead: whatever happens to an input, everything behind it is
# taken back (free-keys first), and nothing is left waiting on the worker for a value that
# will not come.

def kinds(out) -> list[tuple[str, object]]:
    return [(type(m).__name__, m.keys if isinstance(m, FreeKeys) else getattr(m, "key", None))
            for _, m in out if isinstance(m, (FreeKeys, ComputeTask))]


def waiting_ahead(center, address="w1") -> set[str]:
    return set(center.state.workers[address].ahead)


def test_an_input_that_errs_takes_the_whole_line_back_deepest_first_and_it_errs(center,
                                                                                match):
    center.join("w1", features=AHEAD)
    keys = chain(center, 8)
    out = center.erred("w1", keys[0])
    assert freed(out) == [("w1", keys[i]) for i in (4, 3, 2, 1)]
    assert computes(out) == []
    assert ("alice", match(TaskErred, key=keys[-1], exception_type="ZeroDivisionError")) in out
    assert center.state_of(keys[-1]) == "erred"
    assert waiting_ahead(center) == set() and center.processing("w1") == []


def test_a_link_in_the_middle_that_errs_takes_back_only_what_waits_behind_it(center):
    center.join("w1", features=AHEAD)
    keys = chain(center, 10)
    center.finished("w1", keys[0])
    center.finished("w1", keys[1])  # keys[2] runs; 3..6 wait ahead
    assert waiting_ahead(center) == set(keys[3:7])
    out = center.erred("w1", keys[2])
    # (then keys[1], which nothing reads now)
    assert freed(out) == [("w1", keys[i]) for i in (6, 5, 4, 3, 1)]
    assert center.state_of(keys[-1]) == "erred" and center.processing("w1") == []
    assert waiting_ahead(center) == set()


def test_an_input_retried_frees_the_line_before_it_is_sent_again(center):
    center.join("w1", features=AHEAD)
    keys = [f"link-{i}" for i in range(6)]
    center.submit(center.spec(keys[0], retries=1),
                  *(center.spec(key, before) for before, key in zip(keys, keys[1:])),
                  wanted=[keys[-1]])
    out = center.erred("w1", keys[0])
    assert kinds(out) == [("FreeKeys", keys[4:0:-1]), ("ComputeTask", keys[0]),
                          *(("ComputeTask", key) for key in keys[1:5])]
    assert [ahead for _, _, ahead in computes(out)] == [None, *([k] for k in keys[:4])]
    for key in keys:
        center.finished("w1", key)
    assert center.state_of(keys[-1]) == "memory"


def test_a_stolen_input_takes_the_line_back_and_it_follows_the_input_to_the_thief(center):
    center.join("w1", features=AHEAD)
    keys = chain(center, 6)
    center.join("w2", features=AHEAD)
    center.state.stealing[keys[0]] = "w2"
    out = center.worker_sent("w1", StealReply(keys=[keys[0]]))
    assert freed(out) == [("w1", keys[i]) for i in (4, 3, 2, 1)]
    assert kinds(out)[0][0] == "FreeKeys"
    assert computes(out) == [("w2", keys[0], None),
                             *(("w2", keys[i], [keys[i - 1]]) for i in range(1, 5))]
    assert waiting_ahead(center, "w2") == set(keys[1:5])


def test_a_waiting_link_given_up_takes_back_the_links_behind_it(center):
    # A paused worker gives up what it has not started: the center is told of the middle
    # link and frees those that wait for it there.
    center.join("w1", features=AHEAD)
    center.join("w2", features=AHEAD)
    keys = chain(center, 6)
    where = center.processing_on(keys[0])
    center.state.stealing[keys[2]] = None
    out = center.worker_sent(where, StealReply(keys=[keys[2]]))
    assert freed(out) == [(where, keys[4]), (where, keys[3])]
    assert [center.state_of(k) for k in keys] == ["processing", "processing", "waiting",
                                                  "waiting", "waiting", "waiting"]
    assert waiting_ahead(center, where) == {keys[1]}
    # When keys[1] starts there, the line is sent ahead again behind it.
    out = center.finished(where, keys[0])
    assert computes(out) == [(where, keys[i], [keys[i - 1]]) for i in range(2, 6)]


def test_a_killed_worker_s_line_is_placed_again_and_only_the_running_link_is_a_suspect(center):
    center.join("w1", features=AHEAD)
    keys = chain(center, 8)
    center.finished("w1", keys[0])
    center.join("w2", features=AHEAD)
    out = center.leave("w1", reason="killed")
    # (keys[0], done, was held on w1 only: it runs again)
    assert computes(out) == [("w2", keys[0], None),
                             *(("w2", keys[i], [keys[i - 1]]) for i in range(1, 5))]
    assert [center.task(k).died_on for k in keys[:6]] == [(), ("w1",)] + [()] * 4
    for key in keys:
        center.finished("w2", key)
    assert center.state_of(keys[-1]) == "memory"


def test_cancelling_the_chain_s_result_frees_every_link_waiting_ahead(center):
    center.join("w1", features=AHEAD)
    keys = chain(center, 8)
    out = center.cancel(keys[-1])
    assert sorted(freed(out)) == sorted(("w1", k) for k in keys[:5])
    assert center.state.tasks == {} and waiting_ahead(center) == set()


def test_cancelling_a_link_waiting_ahead_that_others_need_changes_nothing(center):
    center.connect("bob")
    center.join("w1", features=AHEAD)
    keys = chain(center, 8)
    center.submit(center.spec(keys[3], keys[2]), client="bob")
    out = center.cancel(keys[3], client="bob")
    assert freed(out) == [] and waiting_ahead(center) == set(keys[1:5])


def test_releasing_a_line_keeps_what_another_result_needs(center):
    center.connect("bob")
    center.join("w1", features=AHEAD)
    keys = chain(center, 8)
    center.submit(center.spec(keys[2], keys[1]), client="bob")
    out = center.release(keys[-1])
    # keys[2] is still wanted: 0..2 go on; 3 and 4, behind it, are freed, the last first.
    assert freed(out) == [("w1", keys[4]), ("w1", keys[3])]
    assert waiting_ahead(center) == {keys[1], keys[2]}
    for key in keys[:3]:
        center.finish(key)
    assert center.state_of(keys[2]) == "memory"


def test_a_link_finished_elsewhere_takes_back_the_line_behind_it_there(center):
    # A worker registering again with a link's value finishes it elsewhere: the worker
    # computing it is told to drop it, and the links waiting behind it there go too.
    center.join("w1", features=AHEAD)
    keys = chain(center, 8, )
    out = center.join("w2", features=AHEAD, keys={keys[2]: 8})
    assert {("w1", k) for k in keys[2:5]} <= set(freed(out))
    assert freed(out).index(("w1", keys[4])) < freed(out).index(("w1", keys[3]))
    # The rest of the chain runs where its input is now, its line ahead of it there.
    assert computes(out) == [("w2", keys[3], None),
                             *(("w2", keys[i], [keys[i - 1]]) for i in range(4, 8))]
    assert waiting_ahead(center) == set() and center.state_of(keys[0]) == "released"


def test_cluster_info_counts_tasks_waiting_ahead_apart_from_those_processing(center):
    from dist_protocol.messages import ClusterInfo
    center.join("w1", features=AHEAD)
    keys = chain(center, 8)
    [(_, reply)] = center.client_sent(ClusterInfo(id=1))
    [row] = reply.workers
    assert (row["processing"], row["ahead"]) == (1, 4)
    center.finished("w1", keys[0])
    [(_, reply)] = center.client_sent(ClusterInfo(id=2))
    assert (reply.workers[0]["processing"], reply.workers[0]["ahead"]) == (1, 4)
    center.erred("w1", keys[1])
    [(_, reply)] = center.client_sent(ClusterInfo(id=3))
    assert (reply.workers[0]["processing"], reply.workers[0]["ahead"]) == (0, 0)


def test_a_line_waiting_ahead_keeps_no_queued_work_from_the_worker_s_idle_threads(center):
    # Two threads, one running a chain's link with four more waiting ahead of it: the other
    # thread takes queued tasks as if the line were not there.
    center.join("w1", nthreads=2, features=AHEAD)
    chain(center, 8)
    out = center.submit(*(center.spec(f"r{i}") for i in range(6)))
    assert [key for _, key, _ in computes(out)] == ["r0", "r1"]  # (to its capacity of 3)
    assert center.state.workers["w1"].assigned == 3
