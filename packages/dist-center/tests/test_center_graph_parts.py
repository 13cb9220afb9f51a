"""A graph sent in several submits (feature ``graph-parts``): each part's tasks are kept until
the last part, which the center handles as if the whole graph had come in one submit; what a
part wants already runs as it arrives (``graph-parts-run``); a client leaving before its last
part leaves nothing behind."""
from __future__ import annotations

from dist_center.snapshot import state_events
from dist_center.state import CenterState
from dist_protocol.messages import ComputeTask, KeyInMemory, Submit, TaskErred


def part(center, *tasks, graph: int | None = 1, more: bool = True, wanted=(),
         client: str = "alice"):
    specs = [center.spec(t) if isinstance(t, str) else t for t in tasks]
    return center.client_sent(Submit(tasks=specs, wanted=list(wanted), graph=graph,
                                     more=more), client)


def computes(out) -> list[str]:
    return [m.key for _, m in out if isinstance(m, ComputeTask)]


def test_a_part_nothing_wants_yet_is_kept_until_the_last_part_links_it(center):
    center.join("w1", nthreads=4)
    out = part(center, "a", "b", center.spec("ab", "a", "b"))
    assert computes(out) == []  # nothing runs before the graph is whole
    assert {center.state_of(k) for k in ("a", "b", "ab")} == {"released"}
    out = part(center, "c", center.spec("total", "ab", "c"), more=False, wanted=["total"])
    assert sorted(computes(out)) == ["a", "b", "c"]
    assert center.task("total").deps == ["ab", "c"]
    for key in ("a", "b", "c", "ab"):
        center.finish(key)
    out = center.finish("total")
    assert [m.key for _, m in out if isinstance(m, KeyInMemory)] == ["total"]
    assert center.state.graph_parts.pending == {}
    # The inputs' data went once read, as in one submit (kept as lineage only).
    assert {center.state_of(k) for k in ("a", "b", "c", "ab")} == {"released"}


def test_the_last_part_forgets_what_nothing_wants_or_needs_as_one_submit_would(center):
    center.join("w1")
    part(center, "unread", "a")
    part(center, center.spec("b", "a"), more=False, wanted=["b"])
    assert center.state_of("unread") == "forgotten"
    assert center.state_of("a") in ("processing", "queued")


def test_keys_wanted_in_an_early_part_run_as_it_arrives(center):
    center.join("w1", nthreads=2)
    out = part(center, "a", "b", center.spec("ab", "a", "b"), "unread", wanted=["ab"])
    # The wanted task's inputs start while the client is still sending the graph; what
    # nothing wants yet neither runs nor is forgotten.
    assert sorted(computes(out)) == ["a", "b"]
    assert center.state_of("unread") == "released"
    center.finish("a")
    center.finish("b")
    out = center.finish("ab")
    assert [m.key for _, m in out if isinstance(m, KeyInMemory)] == ["ab"]
    part(center, center.spec("c", "ab"), more=False, wanted=["c"])
    assert center.state_of("unread") == "forgotten"
    assert center.state.graph_parts.pending == {}


def test_an_early_result_a_later_part_reads_is_kept_while_the_client_wants_it(center):
    from dist_protocol.messages import Release
    center.join("w1")
    out = part(center, "a", wanted=["a"])  # wanted for the later part that reads it
    assert computes(out) == ["a"]
    center.finish("a")
    out = part(center, center.spec("b", "a"), more=False, wanted=["b"])
    assert computes(out) == ["b"]  # its input held already: not computed again
    center.client_sent(Release(keys=["a"]), "alice")
    assert center.state_of("a") == "memory"  # b still reads it
    center.finish("b")
    assert center.state_of("a") == "released"
    center.state.validate()


def test_a_client_leaving_before_its_last_part_leaves_no_task_behind(center):
    center.join("w1")
    part(center, "a", "b", center.spec("ab", "a", "b"), wanted=["ab"])
    part(center, center.spec("c", "ab"), graph=1)
    center.disconnect()
    assert center.state.tasks == {} and center.state.graph_parts.pending == {}
    assert "alice" not in center.state.clients


def test_graphs_of_one_client_and_of_two_clients_do_not_end_each_other(center):
    center.connect("bob")
    center.join("w1", nthreads=4)
    part(center, "a1", graph=1)
    part(center, "a2", graph=2)
    part(center, "b1", graph=1, client="bob")
    center.submit("plain")  # a submit outside any graph ends none
    part(center, center.spec("x2", "a2"), graph=2, more=False, wanted=["x2"])
    assert center.state_of("a1") == "released" and center.state_of("b1") == "released"
    assert center.state_of("a2") != "released"
    part(center, center.spec("x1", "a1"), graph=1, more=False, wanted=["x1"])
    part(center, center.spec("y1", "b1"), graph=1, more=False, wanted=["y1"], client="bob")
    assert center.state.graph_parts.pending == {}
    assert {center.state_of(k) for k in ("a1", "b1")} != {"released"}


def test_a_later_part_naming_an_input_no_part_sent_errs_that_task_alone(center):
    center.join("w1")
    part(center, "a")
    out = part(center, center.spec("b", "a"), center.spec("c", "nowhere"), more=False,
               wanted=["b", "c"])
    erred = [m for _, m in out if isinstance(m, TaskErred)]
    assert [m.key for m in erred] == ["c"]
    assert erred[0].exception_type == "MissingDependency"
    assert computes(out) == ["a"]


def test_a_restart_between_parts_leaves_nothing_kept(center):
    from dist_protocol.messages import Restart
    part(center, "a")
    center.client_sent(Restart(id=1))
    assert center.state.graph_parts.pending == {}
    out = part(center, center.spec("b", "a"), more=False, wanted=["b"])
    assert [m.key for _, m in out if isinstance(m, TaskErred)] == ["b"]


def test_a_journal_rewritten_between_parts_keeps_the_parts(center):
    part(center, "a", center.spec("b", "a"))
    replayed = CenterState()
    replayed.handle(*state_events(center.state))
    replayed.validate()
    assert {k: ts.state for k, ts in replayed.tasks.items()} == {"a": "released",
                                                                "b": "released"}
    replayed.handle(*[])
    from dist_center.events import ClientSent
    replayed.handle(ClientSent("alice", Submit(tasks=[center.spec("c", "b")], wanted=["c"],
                                               graph=1)))
    replayed.validate()
    assert replayed.tasks["a"].state == "no-worker"
    assert replayed.graph_parts.pending == {}
