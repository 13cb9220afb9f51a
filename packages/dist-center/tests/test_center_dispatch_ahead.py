"""Dispatch ahead: a task whose inputs are all held by or being computed on one worker is sent
there before they finish, to workers that announced the feature ``dispatch-ahead``; taken back
whenever an input does not finish there."""
from __future__ import annotations

from dist_protocol.messages import (ComputeTask, FreeKeys, KeyCancelled, StealReply,
                                    StealRequest, TaskErred, TaskSpec)
from dist_protocol.serialize import Payload

AHEAD = frozenset({"dispatch-ahead"})


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


def test_the_next_link_of_a_chain_goes_with_the_running_one_and_starts_without_a_round_trip(
        center):
    center.join("w1", features=AHEAD)
    out = center.submit("a", center.spec("b", "a"), center.spec("c", "b"), wanted=["c"])

    assert computes(out) == [("w1", "a", None), ("w1", "b", ["a"])]
    assert out[1][1].who_has == {"a": []}
    assert center.state_of("b") == "processing" and center.state_of("c") == "waiting"
    assert center.state.workers["w1"].ahead == {"b"}

    out = center.finished("w1", "a")
    # b was already there and started when a finished: c is sent ahead of it, b is not resent.
    assert computes(out) == [("w1", "c", ["b"])]
    assert center.state.workers["w1"].ahead == {"c"}
    assert not freed(out)  # a stays until b, which reads it, is done
    out = center.finished("w1", "b")
    assert computes(out) == [] and freed(out) == [("w1", "a")]
    assert center.state.workers["w1"].ahead == set()
    center.finished("w1", "c")
    assert center.state_of("c") == "memory"


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


def test_at_most_one_task_per_thread_waits_ahead_on_a_worker(center):
    center.join("w1", nthreads=2, features=AHEAD)
    out = center.submit(*(center.spec(f"a{i}", workers=["w1"]) for i in range(2)),
                        *(center.spec(f"b{i}", f"a{i}") for i in range(2)),
                        *(center.spec(f"c{i}", f"b{i}") for i in range(2)))
    assert [key for _, key, ahead in computes(out) if ahead] == ["b0", "b1"]
    assert {center.state_of(f"c{i}") for i in (0, 1)} == {"waiting"}
    assert len(center.state.workers["w1"].ahead) == 2


def test_an_input_read_by_several_tasks_sends_none_ahead(center):
    # A shuffle's pieces, a shared value: placement spreads its readers once it is done.
    center.join("w1", nthreads=2, features=AHEAD)
    out = center.submit("a", *(center.spec(f"b{i}", "a") for i in range(4)))
    assert [key for _, key, ahead in computes(out) if ahead] == []
    out = center.finished("w1", "a")
    assert sorted(key for _, key, _ in computes(out)) == ["b0", "b1", "b2", "b3"]


def test_a_task_is_not_sent_ahead_of_a_task_sent_ahead(center):
    center.join("w1", nthreads=4, features=AHEAD)
    keys = chain(center, 5)
    assert [center.state_of(k) for k in keys] == ["processing", "processing", "waiting",
                                                  "waiting", "waiting"]


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


def test_a_long_chain_runs_to_its_end_one_link_ahead_at_a_time(center):
    center.join("w1", features=AHEAD)
    keys = chain(center, 200)
    for key in keys:
        assert len(center.state.workers["w1"].ahead) <= 1
        center.finished("w1", key)
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
