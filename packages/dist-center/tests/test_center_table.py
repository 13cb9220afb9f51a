"""The transition table: every row names known states and a real handler, the invariants hold
it to the states, the spec's diagram is drawn from it, and the log says why each task moved."""
from typing import get_args

import pytest
from dist_center.events import ClientSent, WorkerJoined, WorkerSent
from dist_center.invariants import check_table
from dist_center.records import STATES, TaskStateName
from dist_center.state import CenterState
from dist_center.transition_table import TRANSITIONS, lifecycle_diagram
from dist_center.transitions import InvalidTransition
from dist_protocol.messages import (RegisterWorker, Release, Story, StoryReply, Submit,
                                    TaskFinished)
from dist_protocol.testing import REGENERATE_HINT, spec_dir


def test_the_states_are_defined_once_and_the_table_uses_them_all():
    assert set(STATES) | {"forgotten"} == set(get_args(TaskStateName))
    check_table(TRANSITIONS)
    state = CenterState()
    for (start, finish), name in TRANSITIONS.items():
        assert callable(getattr(state, name)), (start, finish, name)


def test_a_table_missing_a_state_or_a_way_out_fails_the_check():
    without_lost = {row: name for row, name in TRANSITIONS.items() if "lost" not in row}
    with pytest.raises(AssertionError):
        check_table(without_lost)
    no_release = {row: name for row, name in TRANSITIONS.items() if row != ("erred", "released")}
    with pytest.raises(AssertionError):
        check_table(no_release)
    with pytest.raises(AssertionError):
        check_table({**TRANSITIONS, ("memory", "cooking"): "_to_memory"})


def test_a_move_the_table_does_not_have_is_refused(center):
    center.join("w1")
    center.submit("a")
    with pytest.raises(InvalidTransition, match="a: processing -> scattering"):
        center.state.transition(center.task("a"), "scattering", "test")


def test_the_spec_diagram_is_drawn_from_the_table():
    path = spec_dir() / "diagrams" / "center-tasks.md"
    assert path.is_file(), f"{path} is missing; {REGENERATE_HINT}"
    assert path.read_text(encoding="utf-8") == lifecycle_diagram(), REGENERATE_HINT
    for (start, finish), name in TRANSITIONS.items():
        arrow = f"{start.replace('-', '_')} --> {finish.replace('-', '_')}: {name.lstrip('_')}"
        assert arrow in lifecycle_diagram()


def test_the_log_records_each_move_with_its_stimulus_and_time(center):
    center.state.clock = lambda: 1234.5
    center.join("w1")
    center(ClientSent("alice", Submit(tasks=[center.spec("a"), center.spec("b", "a")],
                                      wanted=["b"]), stimulus_id="submit-x"))
    center(WorkerSent("w1", TaskFinished(key="a", nbytes=8, type="int"), stimulus_id="done-a"))
    center(WorkerSent("w1", TaskFinished(key="b", nbytes=8, type="int"), stimulus_id="done-b"))
    center(ClientSent("alice", Release(keys=["b"]), stimulus_id="release-b"))

    assert center.state.story("a") == [
        ("a", "released", "waiting", "submit-x", 1234.5),
        ("a", "waiting", "processing", "submit-x", 1234.5),
        ("a", "processing", "memory", "done-a", 1234.5),
        ("a", "memory", "released", "done-b", 1234.5),  # b needs it no more: lineage only
        ("a", "released", "forgotten", "release-b", 1234.5)]
    assert [(start, finish, sid) for _, start, finish, sid, _ in center.state.story("b")] == [
        ("released", "waiting", "submit-x"),
        ("waiting", "processing", "done-a"),
        ("processing", "memory", "done-b"),
        ("memory", "forgotten", "release-b")]


def test_events_without_a_stimulus_id_are_named_by_what_happened(center):
    center.join("w1")
    center.submit("a")
    center.finished("w1", "a")
    stimuli = [sid for _, _, _, sid, _ in center.state.story("a")]
    assert stimuli[0].startswith("submit-") and stimuli[-1].startswith("task-finished-")
    assert len(set(stimuli)) == 2


def join_telling_stories(center, address):
    return center(WorkerJoined(RegisterWorker(address=address, nthreads=1),
                               features=frozenset({"story"})))


def test_a_story_gathers_the_center_s_log_and_every_worker_s(center, match):
    center.state.clock = lambda: 10.0
    join_telling_stories(center, "w1")
    join_telling_stories(center, "w2")
    center.join("old")  # an older worker, which keeps no story: not asked
    center.submit("a")
    center.finished("w1", "a")

    out = center.client_sent(Story(id=5, keys=["a"]))
    assert sorted(out, key=lambda item: item[0]) == [("w1", match(Story, keys=["a"])),
                                                     ("w2", match(Story, keys=["a"]))]
    number = out[0][1].id
    worker_entry = {"key": "a", "start": "ready", "finish": "executing",
                    "stimulus_id": "compute-task-1", "time": 9.5, "worker": "w1"}
    assert center.worker_sent("w1", StoryReply(id=number, entries=[worker_entry])) == []
    assert center.worker_sent("w1", StoryReply(id=number, entries=[worker_entry])) == []
    out = center.leave("w2")  # it will never answer: the story is told without it

    [(to, reply)] = [item for item in out if isinstance(item[1], StoryReply)]
    assert to == "alice" and reply.id == 5
    assert [(e["worker"], e["start"], e["finish"]) for e in reply.entries] == [
        ("w1", "ready", "executing"),
        ("", "released", "waiting"), ("", "waiting", "processing"),
        ("", "processing", "memory")]
    assert center.state.stories.pending == {}


def test_a_story_without_workers_is_told_at_once_and_dropped_with_its_client(center):
    center.submit("a")
    [(to, reply)] = center.client_sent(Story(id=1, keys=["a", "unknown"]))
    assert to == "alice" and [e["finish"] for e in reply.entries] == ["waiting", "no-worker"]

    join_telling_stories(center, "w1")
    center.client_sent(Story(id=2, keys=["a"]))
    center.disconnect("alice")
    assert center.state.stories.pending == {}


def test_the_messages_built_per_task_take_their_fields_in_the_order_the_center_passes_them():
    # ``compute_message`` and ``_to_memory`` build these positionally (once per task each):
    # a field moved or put in between would send a value under another field's name (one
    # added at the end, with a default, changes nothing here).
    from dataclasses import fields

    from dist_protocol.messages import ComputeTask, KeyInMemory

    assert [f.name for f in fields(ComputeTask)][:10] == [
        "key", "function", "args", "who_has", "nbytes", "priority", "pickled_with", "actor",
        "ahead", "value_msgpack"]
    assert [f.name for f in fields(KeyInMemory)][:5] == [
        "key", "nbytes", "type", "workers", "value"]
