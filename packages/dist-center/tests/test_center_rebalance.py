"""rebalance: the center evens out the bytes its workers hold, each move a copy to the
recipient then a free on the sender, and answers once every move is done or failed."""
from dist_center.events import TimeElapsed
from dist_center.rebalancing import COPY_TIMEOUT
from dist_protocol.messages import (AcquireReplicas, FreeKeys, KeysAdded, Rebalance,
                                    RebalanceReply)


def held_on_w1(center, *keys, nbytes=100):
    """``keys`` in memory on w1 alone, then w2 and w3 join empty."""
    center.join("w1", nthreads=len(keys))
    center.submit(*keys)
    for key in keys:
        center.finish(key, nbytes)
    center.join("w2")
    center.join("w3")


def test_the_oldest_keys_move_from_the_fullest_worker_to_the_emptiest(center):
    held_on_w1(center, "a", "b", "c", "d", "e", "f")

    out = center.client_sent(Rebalance(id=1))

    assert sorted(out, key=lambda item: item[0]) == [
        ("w2", AcquireReplicas(who_has={"a": ["w1"], "c": ["w1"]},
                               nbytes={"a": 100, "c": 100})),
        ("w3", AcquireReplicas(who_has={"b": ["w1"], "d": ["w1"]},
                               nbytes={"b": 100, "d": 100}))]
    # The sender's copy goes once the recipient holds the key; the answer once all moved.
    assert center.worker_sent("w2", KeysAdded(keys={"a": 100, "c": 100})) == [
        ("w1", FreeKeys(keys=["a", "c"]))]
    assert center.worker_sent("w3", KeysAdded(keys={"b": 100, "d": 100})) == [
        ("w1", FreeKeys(keys=["b", "d"])),
        ("alice", RebalanceReply(id=1, moved=["a", "c", "b", "d"]))]
    assert {a: w.nbytes for a, w in center.state.workers.items()} == {
        "w1": 200, "w2": 200, "w3": 200}
    assert center.who_has("a") == {"w2"} and center.who_has("e") == {"w1"}


def test_a_balanced_cluster_moves_nothing_and_is_answered_at_once(center):
    center.join("w1")
    center.join("w2")
    center.submit("a", "b")
    center.finish("a", 100)
    center.finish("b", 100)

    assert center.client_sent(Rebalance(id=2)) == [("alice", RebalanceReply(id=2))]


def test_only_the_keys_and_workers_named_take_part(center):
    held_on_w1(center, "a", "b", "c", "d")

    out = center.client_sent(Rebalance(id=3, keys=["b", "nope"], workers=["w1", "w2"]))

    assert out == [("w2", AcquireReplicas(who_has={"b": ["w1"]}, nbytes={"b": 100}))]
    assert center.worker_sent("w2", KeysAdded(keys={"b": 100}))[-1] == (
        "alice", RebalanceReply(id=3, moved=["b"], failed=["nope"]))


def test_a_key_a_task_will_read_stays_where_it_is(center):
    held_on_w1(center, "a", "b", "c", "d")
    center.submit(center.spec("x", "a", workers=["w1"]), center.spec("y", "b", workers=["w1"]))

    out = center.client_sent(Rebalance(id=4))

    moved = {key for _, msg in out if isinstance(msg, AcquireReplicas) for key in msg.who_has}
    assert moved and not moved & {"a", "b"}


def test_an_unknown_worker_is_an_error_and_nothing_moves(center):
    held_on_w1(center, "a", "b")

    assert center.client_sent(Rebalance(id=5, workers=["w1", "w9"])) == [
        ("alice", RebalanceReply(id=5, error="no worker has the name or address 'w9'"))]


def test_a_move_fails_when_its_recipient_leaves_or_its_copy_never_comes(center):
    held_on_w1(center, "a", "b", "c", "d", "e", "f")
    now = [1000.0]
    center.state.clock = lambda: now[0]
    center.client_sent(Rebalance(id=6))

    assert center.leave("w2") == []  # (its moves fail; w3's go on)
    now[0] += COPY_TIMEOUT
    out = center(TimeElapsed())

    assert out == [("alice", RebalanceReply(id=6, failed=["a", "c", "b", "d"]))]
    assert center.who_has("a") == {"w1"}  # nothing freed where nothing arrived
