"""Requests the center answers when what they wait for holds (feature ``waits``), as
transcripts: the answer comes with the event that makes it true, with the timeout's event, or
not at all once the client has gone."""
from dist_center.events import WaitTimedOut
from dist_protocol.messages import (AcquireReplicas, ClusterInfo, ClusterInfoReply, Replicate,
                                    ReplicateReply, Restart, ScatterPlanReply)


def replies_to(out, client="alice"):
    return [msg for to, msg in out if to == client]


def nothing_waits(center):
    assert not center.state.waits
    assert center.state.waits.watched == {}


def in_memory_on(center, key, *addresses, nbytes=8):
    """``key`` computed on the first of ``addresses`` and copied to the others."""
    center.submit(center.spec(key, workers=[addresses[0]]))
    center.finished(addresses[0], key, nbytes)
    for address in addresses[1:]:
        center.keys_added(address, {key: nbytes})


# -- cluster-info with min_workers --------------------------------------------------------------

def test_a_wait_for_workers_is_answered_by_the_registration_that_makes_enough(center, match):
    center.join("w1")
    assert center.client_sent(ClusterInfo(id=4, min_workers=2, timeout=30.0)) == []

    out = center.join("w2")

    assert replies_to(out) == [match(ClusterInfoReply, id=4)]
    assert [w["address"] for w in replies_to(out)[0].workers] == ["w1", "w2"]
    nothing_waits(center)
    assert replies_to(center.join("w3")) == []  # answered once


def test_a_wait_for_workers_already_there_is_answered_at_once(center, match):
    center.join("w1")
    assert replies_to(center.client_sent(ClusterInfo(id=1, min_workers=1))) == [
        match(ClusterInfoReply, id=1)]
    assert replies_to(center.client_sent(ClusterInfo(id=2, min_workers=5, timeout=0))) == [
        match(ClusterInfoReply, id=2)]  # timeout 0: never waits
    nothing_waits(center)


def test_a_wait_for_workers_times_out_with_the_workers_there_are(center, match):
    center.join("w1")
    center.client_sent(ClusterInfo(id=4, min_workers=3, timeout=1.0))

    out = center(WaitTimedOut("alice", "cluster-info", 4))

    assert replies_to(out) == [match(ClusterInfoReply, id=4)]
    assert len(replies_to(out)[0].workers) == 1
    nothing_waits(center)
    assert center(WaitTimedOut("alice", "cluster-info", 4)) == []  # no news twice


def test_a_worker_leaving_does_not_answer_a_wait_for_workers(center):
    center.join("w1")
    center.client_sent(ClusterInfo(id=4, min_workers=2))
    assert replies_to(center.leave("w1")) == []
    assert center.state.waits.describe()["cluster-info"] == 1


def test_a_client_leaving_leaves_no_wait_behind(center):
    center.connect("bob")
    center.join("w1")
    center.join("w2")
    center.submit(center.spec("x", workers=["w1"]), client="bob")
    center.finished("w1", "x")
    center.client_sent(ClusterInfo(id=1, min_workers=9), "bob")
    center.scatter_plan({"y": 10}, client="bob", request=2, workers=["nobody"], timeout=5.0)
    center.client_sent(Replicate(keys=["x"], n=2, id=3), "bob")
    assert center.state.waits.describe() == {"cluster-info": 1, "scatter-plan": 1,
                                             "replicate": 1, "keys watched": 1}

    center.disconnect("bob")

    nothing_waits(center)
    assert replies_to(center.join("w3"), "bob") == []
    assert center(WaitTimedOut("bob", "cluster-info", 1)) == []


# -- scatter-plan with a timeout ----------------------------------------------------------------

def test_a_scatter_plan_without_workers_is_made_when_the_first_registers(center):
    assert center.scatter_plan({"x": 10}, timeout=30.0) == []
    assert "x" not in center.state.tasks  # nothing changed while it waits

    out = center.join("w1")

    assert replies_to(out) == [ScatterPlanReply(id=1, targets={"x": ["w1"]})]
    assert center.state_of("x") == "scattering"
    assert center.state.clients["alice"] == {"x"}
    nothing_waits(center)


def test_a_scatter_plan_waits_for_a_worker_it_may_use(center):
    center.join("w1", name="one")
    assert center.scatter_plan({"x": 10}, workers=["two"], timeout=30.0) == []
    assert replies_to(center.join("w3", name="three")) == []

    out = center.join("w2", name="two")

    assert replies_to(out) == [ScatterPlanReply(id=1, targets={"x": ["w2"]})]


def test_a_scatter_plan_waits_for_a_paused_worker_to_resume(center):
    center.join("w1")
    center.heartbeat("w1", paused=True)
    assert center.state.workers["w1"].status == "paused"
    assert center.scatter_plan({"x": 10}, timeout=30.0) == []

    out = center.heartbeat("w1", paused=False)

    assert replies_to(out) == [ScatterPlanReply(id=1, targets={"x": ["w1"]})]


def test_a_scatter_plan_that_times_out_is_answered_empty_and_changes_nothing(center):
    center.scatter_plan({"x": 10}, timeout=1.0)

    assert center(WaitTimedOut("alice", "scatter-plan", 1)) == [
        ("alice", ScatterPlanReply(id=1, targets={}))]
    assert "x" not in center.state.tasks and center.state.clients["alice"] == set()
    assert replies_to(center.join("w1")) == []
    nothing_waits(center)


def test_a_scatter_plan_without_a_timeout_is_answered_at_once_as_before(center):
    assert center.scatter_plan({"x": 10}) == [("alice", ScatterPlanReply(id=1, targets={}))]
    nothing_waits(center)


# -- replicate with an id -----------------------------------------------------------------------

def test_replicate_is_answered_when_the_last_copy_lands(center):
    for address in ("w1", "w2", "w3"):
        center.join(address)
    in_memory_on(center, "a", "w1")
    in_memory_on(center, "b", "w2")

    out = center.client_sent(Replicate(keys=["a", "b"], n=3, id=7, timeout=60.0))

    assert sorted(out, key=lambda sent: sent[0]) == [
        ("w1", AcquireReplicas(who_has={"b": ["w2"]}, nbytes={"b": 8})),
        ("w2", AcquireReplicas(who_has={"a": ["w1"]}, nbytes={"a": 8})),
        ("w3", AcquireReplicas(who_has={"a": ["w1"], "b": ["w2"]}, nbytes={"a": 8, "b": 8}))]
    assert center.keys_added("w2", {"a": 8}) == []
    assert center.keys_added("w3", {"a": 8, "b": 8}) == []
    assert center.keys_added("w1", {"b": 8}) == [
        ("alice", ReplicateReply(id=7, status="ok", n=3, keys=[]))]
    nothing_waits(center)


def test_replicate_of_keys_already_copied_is_answered_at_once(center):
    center.join("w1")
    center.join("w2")
    in_memory_on(center, "a", "w1", "w2")
    assert center.client_sent(Replicate(keys=["a"], n=2, id=1)) == [
        ("alice", ReplicateReply(id=1, status="ok", n=2, keys=[]))]


def test_replicate_waits_for_at_most_as_many_copies_as_workers(center):
    center.join("w1")
    center.join("w2")
    in_memory_on(center, "a", "w1")

    out = center.client_sent(Replicate(keys=["a"], n=5, id=1, timeout=60.0))

    assert out == [("w2", AcquireReplicas(who_has={"a": ["w1"]}, nbytes={"a": 8}))]
    assert replies_to(center.join("w3")) == []  # a later worker is not waited for
    assert center.keys_added("w2", {"a": 8}) == [
        ("alice", ReplicateReply(id=1, status="ok", n=2, keys=[]))]


def test_replicate_waits_for_fewer_copies_when_a_worker_leaves(center):
    for address in ("w1", "w2", "w3"):
        center.join(address)
    in_memory_on(center, "a", "w1")
    center.client_sent(Replicate(keys=["a"], n=3, id=1))
    center.keys_added("w2", {"a": 8})

    out = center.leave("w3")  # its copy will not come

    assert replies_to(out) == [ReplicateReply(id=1, status="ok", n=2, keys=[])]


def test_replicate_of_a_key_released_while_waiting_is_answered_gone(center):
    center.connect("bob")
    center.join("w1")
    center.join("w2")
    in_memory_on(center, "a", "w1")
    center.client_sent(Replicate(keys=["a"], n=2, id=1), "bob")

    out = center.release("a")  # its only wanter

    assert replies_to(out, "bob") == [ReplicateReply(id=1, status="gone", n=2, keys=["a"])]
    nothing_waits(center)


def test_replicate_of_a_key_lost_while_waiting_is_answered_gone(center):
    center.join("w1")
    center.join("w2")
    center.scatter_plan({"x": 10}, workers=["w1"])
    center.keys_added("w1", {"x": 10})
    center.client_sent(Replicate(keys=["x"], n=2, id=1))

    out = center.leave("w1")

    assert ReplicateReply(id=1, status="gone", n=1, keys=["x"]) in replies_to(out)
    nothing_waits(center)


def test_replicate_of_a_key_not_in_memory_is_answered_gone_at_once(center):
    center.join("w1")
    center.submit("pending")
    assert center.client_sent(Replicate(keys=["pending", "unknown"], n=2, id=1)) == [
        ("alice", ReplicateReply(id=1, status="gone", n=1, keys=["pending", "unknown"]))]
    nothing_waits(center)


def test_a_copy_found_missing_is_waited_for_again(center):
    for address in ("w1", "w2", "w3"):
        center.join(address)
    in_memory_on(center, "a", "w1")
    in_memory_on(center, "b", "w1")
    center.client_sent(Replicate(keys=["a", "b"], n=2, id=1))
    center.keys_added("w2", {"a": 8})
    center.missing("w3", "a", "w2")  # that copy is not there after all

    assert center.keys_added("w2", {"b": 8}) == []  # "a" is short again
    assert replies_to(center.keys_added("w3", {"a": 8})) == [
        ReplicateReply(id=1, status="ok", n=2, keys=[])]


def test_replicate_times_out_naming_the_keys_still_short(center):
    center.join("w1")
    center.join("w2")
    in_memory_on(center, "a", "w1")
    in_memory_on(center, "b", "w1")
    center.client_sent(Replicate(keys=["a", "b"], n=2, id=1, timeout=1.0))
    center.keys_added("w2", {"a": 8})

    assert center(WaitTimedOut("alice", "replicate", 1)) == [
        ("alice", ReplicateReply(id=1, status="timeout", n=2, keys=["b"]))]
    nothing_waits(center)


def test_a_restart_ends_every_replicate_wait(center):
    center.join("w1")
    center.join("w2")
    in_memory_on(center, "a", "w1")
    center.client_sent(Replicate(keys=["a"], n=2, id=1))

    out = center.client_sent(Restart(id=2))

    assert ReplicateReply(id=1, status="gone", n=1, keys=["a"]) in replies_to(out)
    nothing_waits(center)


def test_replicate_without_an_id_is_not_answered_as_before(center):
    center.join("w1")
    center.join("w2")
    in_memory_on(center, "a", "w1")
    out = center.client_sent(Replicate(keys=["a"], n=2))
    assert replies_to(out) == []
    nothing_waits(center)
