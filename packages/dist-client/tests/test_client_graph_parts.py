"""How the client cuts a graph's tasks into submits (protocol feature ``graph-parts``)."""
from __future__ import annotations

from dist_client.dask_graphs import graph_submits
from dist_protocol.messages import TaskSpec
from dist_protocol.serialize import Payload


def tasks(count: int, size: int = 10) -> list[TaskSpec]:
    return [TaskSpec(key=f"t-{i}", function=Payload("pickle", [b"x" * size]),
                     deps=[f"t-{i - 1}"] if i else []) for i in range(count)]


def test_a_graph_within_a_part_or_to_a_center_without_the_feature_is_one_plain_submit():
    for in_parts, count in ((True, 5), (False, 50)):
        [submit] = graph_submits(tasks(count), ["t-1"], in_parts, part_tasks=5)
        assert len(submit.tasks) == count and submit.wanted == ["t-1"]
        assert submit.graph is None and not submit.more and submit.small_values


def test_parts_keep_the_order_share_a_graph_and_all_but_the_last_say_more():
    sent = tasks(12)
    parts = graph_submits(sent, ["t-3", "t-11"], True, part_tasks=5)
    assert [len(p.tasks) for p in parts] == [5, 5, 2]
    assert [t for p in parts for t in p.tasks] == sent
    assert [p.more for p in parts] == [True, True, False]
    assert len({p.graph for p in parts}) == 1 and parts[0].graph is not None
    assert [p.wanted for p in parts] == [["t-3"], [], ["t-11"]]
    assert graph_submits(sent, None, True, part_tasks=5)[0].wanted is None
    assert graph_submits(tasks(12), None, True, part_tasks=5)[0].graph != parts[0].graph


def test_a_part_is_cut_short_by_the_bytes_of_its_payloads_never_below_one_task():
    parts = graph_submits(tasks(6, size=100), None, True, part_tasks=5, part_bytes=250)
    assert [len(p.tasks) for p in parts] == [3, 3]
    parts = graph_submits(tasks(3, size=1000), None, True, part_tasks=5, part_bytes=250)
    assert [len(p.tasks) for p in parts] == [1, 1, 1]
