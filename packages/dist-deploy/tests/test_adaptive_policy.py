"""The adaptive policy alone: transcripts of the center's advice in, decisions out."""
import pytest
from dist_deploy import AdaptivePolicy, Decision


def test_scales_up_at_once_to_the_target_within_the_bounds():
    policy = AdaptivePolicy(minimum=1, maximum=4)
    assert policy.recommend(3, [], set(), []) == Decision("up", n=3)
    assert policy.recommend(10, ["a"], {"a"}, []) == Decision("up", n=4)
    assert policy.recommend(0, [], set(), []) == Decision("up", n=1)


def test_same_when_on_target():
    policy = AdaptivePolicy()
    assert policy.recommend(2, ["a", "b"], {"a", "b"}, []) == Decision("same", 2)


def test_scales_down_only_after_wait_count_recommendations_in_a_row():
    policy = AdaptivePolicy(wait_count=3)
    planned, registered = ["a", "b", "c"], {"a", "b", "c"}
    assert policy.recommend(1, planned, registered, ["c", "b"]).action == "same"
    assert policy.recommend(1, planned, registered, ["c", "b"]).action == "same"
    assert policy.recommend(1, planned, registered, ["c", "b"]) == Decision(
        "down", workers=["c", "b"])


def test_a_recommendation_that_changes_its_mind_starts_counting_again():
    policy = AdaptivePolicy(wait_count=2)
    planned, registered = ["a", "b"], {"a", "b"}
    assert policy.recommend(1, planned, registered, ["b"]).action == "same"
    assert policy.recommend(2, planned, registered, []).action == "same"  # work arrived
    assert policy.recommend(1, planned, registered, ["b"]).action == "same"  # counting anew
    assert policy.recommend(1, planned, registered, ["a"]).action == "same"  # another worker
    assert policy.recommend(1, planned, registered, ["a"]) == Decision("down", workers=["a"])


def test_workers_not_yet_registered_go_first_newest_first():
    policy = AdaptivePolicy(wait_count=1)
    decision = policy.recommend(1, ["a", "b", "c"], {"a"}, [])
    assert decision == Decision("down", workers=["c", "b"])


def test_the_minimum_keeps_workers_the_center_would_retire():
    policy = AdaptivePolicy(minimum=2, wait_count=1)
    decision = policy.recommend(0, ["a", "b", "c"], {"a", "b", "c"}, ["a", "b", "c"])
    assert decision == Decision("down", workers=["a"])


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="minimum"):
        AdaptivePolicy(minimum=3, maximum=2)
    with pytest.raises(ValueError, match="wait_count"):
        AdaptivePolicy(wait_count=0)
