"""dask's MultiLock at the center, as transcripts: acquires, releases, timeouts and departures
in, replies out (``validate()`` runs after every step)."""
import itertools

import pytest
from dist_center.events import CoordinationTimedOut
from dist_protocol.messages import Coordinate, CoordinateReply


def acquire(center, lease, *names, client="alice", request=1, **fields):
    return center.client_sent(Coordinate(id=request, kind="multi-lock", name="*",
                                         action="acquire", names=list(names), lease=lease,
                                         **fields), client)


def release(center, lease, client="alice", request=2):
    return center.client_sent(Coordinate(id=request, kind="multi-lock", name="*",
                                         action="release", lease=lease), client)


def ok(request, count):
    return CoordinateReply(id=request, status="ok", count=count)


def timeout(request):
    return CoordinateReply(id=request, status="timeout")


def test_free_locks_are_granted_at_once_and_a_request_sharing_one_waits(center):
    center.connect("bob")
    assert acquire(center, "a", "x", "y") == [("alice", ok(1, 2))]
    assert acquire(center, "b", "y", "z", client="bob", request=5) == []  # y is alice's
    assert acquire(center, "c", "z", client="bob", request=6) == []  # z waits behind b
    assert release(center, "a") == [("alice", ok(2, 2)), ("bob", ok(5, 2))]
    assert release(center, "b", client="bob", request=7) == [("bob", ok(7, 2)),
                                                               ("bob", ok(6, 1))]
    assert release(center, "c", client="bob", request=8) == [("bob", ok(8, 1))]
    assert center.state.coordination.multi_locks.lines == {}


def test_num_locks_takes_the_free_ones_and_leaves_the_other_lines(center):
    center.connect("bob")
    assert acquire(center, "a", "x") == [("alice", ok(1, 1))]
    assert acquire(center, "b", "x", "y", "z", client="bob", limit=2) == [("bob", ok(1, 2))]
    locks = center.state.coordination.multi_locks
    assert locks.lines == {"x": ["a"], "y": ["b"], "z": ["b"]}  # b is in no line it waits in
    assert acquire(center, "c", "y", "z", "w", client="alice", request=3, limit=2) == []
    assert release(center, "b", client="bob") == [("bob", ok(2, 2)), ("alice", ok(3, 2))]
    assert locks.lines == {"x": ["a"], "w": ["c"], "y": ["c"]}  # its first two, of three


def test_a_request_for_many_locks_is_not_overtaken_by_later_requests_for_few(center):
    center.connect("bob")
    assert acquire(center, "x-holder", "x") == [("alice", ok(1, 1))]
    assert acquire(center, "many", "x", "y", "z", client="bob", request=5) == []
    # Later requests for the locks it waits with, though free now, wait behind it.
    for i, name in enumerate("yz"):
        assert acquire(center, f"few-{name}", name, request=10 + i) == []
    assert release(center, "x-holder") == [("alice", ok(2, 1)), ("bob", ok(5, 3))]
    assert release(center, "many", client="bob", request=6) == [
        ("bob", ok(6, 3)), ("alice", ok(10, 1)), ("alice", ok(11, 1))]


def test_an_acquire_times_out_leaving_its_lines_and_blocking_nobody(center):
    center.connect("bob")
    assert acquire(center, "a", "x") == [("alice", ok(1, 1))]
    assert acquire(center, "b", "x", "y", client="bob", request=5, timeout=1.0) == []
    assert acquire(center, "c", "y", request=3) == []  # behind b, which heads y
    assert center(CoordinationTimedOut("bob", 5)) == [("bob", timeout(5)), ("alice", ok(3, 1))]
    assert center(CoordinationTimedOut("bob", 5)) == []  # no news twice
    assert acquire(center, "d", "x", request=4, timeout=0) == [("alice", timeout(4))]
    assert center.state.coordination.multi_locks.lines == {"x": ["a"], "y": ["c"]}


def test_a_client_that_leaves_releases_its_locks_and_drops_its_waits(center):
    center.connect("bob")
    assert acquire(center, "a", "x", "y", client="bob") == [("bob", ok(1, 2))]
    assert acquire(center, "b", "z", client="bob", request=2) == [("bob", ok(2, 1))]
    assert acquire(center, "c", "x", "z", request=3) == []
    assert acquire(center, "d", "z", client="bob", request=4, timeout=5.0) == []
    assert center.disconnect("bob") == [("alice", ok(3, 2))]
    assert center(CoordinationTimedOut("bob", 4)) == []
    assert center.state.coordination.multi_locks.lines == {"x": ["c"], "z": ["c"]}


@pytest.mark.parametrize("fields, error", [
    ({"names": []}, "names one lock or more"),
    ({"names": ["x", ""]}, "names one lock or more"),
    ({"names": ["x"], "lease": None}, "needs a lease id"),
    ({"names": ["x", "y"], "limit": 3}, "between 1 and the 2 locks named, not 3"),
    ({"names": ["x", "y"], "limit": 0}, "not 0"),
])
def test_a_malformed_acquire_is_an_error_and_changes_nothing(center, fields, error):
    msg = Coordinate(id=1, kind="multi-lock", name="*", action="acquire",
                     lease=fields.pop("lease", "a"), **fields)
    [(to, reply)] = center.client_sent(msg)
    assert reply.status == "error" and error in reply.error
    assert center.state.coordination.multi_locks.requests == {}


def test_a_lease_is_not_reentrant_and_a_release_must_be_of_a_lock_held(center):
    center.connect("bob")
    acquire(center, "a", "x")
    [(_, again)] = acquire(center, "a", "y", request=2)
    assert again.status == "error" and "not re-entrant" in again.error
    [(_, other)] = release(center, "a", client="bob")
    assert other.status == "error" and "not held by this client" in other.error
    acquire(center, "b", "x", client="bob", request=3)
    [(_, waiting)] = release(center, "b", client="bob", request=4)
    assert waiting.status == "error"  # waiting is not holding
    assert release(center, "a", request=5) == [("alice", ok(5, 1)), ("bob", ok(3, 1))]


def test_repeated_names_are_one_lock(center):
    assert acquire(center, "a", "x", "x", "y") == [("alice", ok(1, 2))]


def test_every_order_of_three_overlapping_requests_ends_with_each_granted_once(center):
    """Whatever the order of arrivals and releases, nobody waits for ever and no two hold a
    lock together (``validate`` checks the lines after each step)."""
    requests = {"p": ("x", "y"), "q": ("y", "z"), "r": ("z", "x")}
    for order in itertools.permutations(requests):
        granted: list[str] = []
        for i, lease in enumerate(order):
            out = acquire(center, lease, *requests[lease], request=i)
            granted += [order[reply.id] for _, reply in out]
        while granted:
            lease = granted.pop(0)
            out = release(center, lease, request=100)
            granted += [order[reply.id] for _, reply in out if reply.id != 100]
        assert center.state.coordination.multi_locks.requests == {}, order
