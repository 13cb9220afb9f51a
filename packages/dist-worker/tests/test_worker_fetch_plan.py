"""The fetch plan alone: which requests go to which peers, from what is missing."""
from dist_worker.fetch_plan import MAX_FETCH_BYTES, REQUESTS_PER_PEER, plan_requests

P1, P2 = "tcp://p1:1", "tcp://p2:2"


def plan(missing, busy=None, incoming=0, any_in_flight=False, one_at_a_time=False,
         limit=None):
    return plan_requests(missing, busy or {}, incoming, any_in_flight, one_at_a_time, limit)


def test_small_inputs_of_one_peer_go_in_one_request():
    assert plan([("a", [P1], 10), ("b", [P1], 10)]) == {P1: [["a", "b"]]}


def test_a_request_is_bounded_in_bytes_and_the_next_goes_to_the_peer_least_asked():
    half = MAX_FETCH_BYTES // 2 + 1
    assert plan([("a", [P1, P2], half), ("b", [P1, P2], half), ("c", [P1], half)]) == {
        P1: [["a"], ["c"]], P2: [["b"]]}


def test_a_peer_with_its_requests_unanswered_is_not_asked_again():
    assert plan([("a", [P1], 10)], busy={P1: REQUESTS_PER_PEER}) == {}
    assert plan([("a", [P1, P2], 10)], busy={P1: REQUESTS_PER_PEER}) == {P2: [["a"]]}


def test_one_at_a_time_plans_one_key_and_none_while_one_is_in_flight():
    missing = [("a", [P1], 10), ("b", [P1], 10)]
    assert plan(missing, one_at_a_time=True) == {P1: [["a"]]}
    assert plan(missing, any_in_flight=True, one_at_a_time=True) == {}


def test_the_incoming_limit_delays_inputs_but_never_blocks_the_first():
    missing = [("a", [P1], 100), ("b", [P1], 100)]
    assert plan(missing, limit=50) == {P1: [["a"]]}
    assert plan(missing, incoming=60, any_in_flight=True, limit=150) == {}
    assert plan(missing, limit=200) == {P1: [["a", "b"]]}
