"""Deterministic keys: equal pure calls share a key; impure calls and unhashable inputs don't."""
import re

import numpy as np
import pytest
from dist_client.keys import function_token, funcname, task_key, tokenize

KEY = re.compile(r"^[\w.]+-[0-9a-f]{32}$")


def inc(x):
    return x + 1


def test_key_shape_and_name():
    key = task_key(inc, (1,), {})
    assert KEY.match(key), key
    assert key.startswith("inc-")
    assert funcname(lambda x: x) == "lambda"


def test_equal_calls_share_a_key():
    assert task_key(inc, (1,), {}) == task_key(inc, (1,), {})
    assert task_key(inc, (1,), {}) != task_key(inc, (2,), {})
    assert task_key(inc, (1,), {"a": 1}) != task_key(inc, (1,), {"a": 2})
    assert task_key(sum, ([1, 2],), {}) == task_key(sum, ([1, 2],), {})


def test_dict_and_set_order_do_not_matter():
    assert tokenize({"a": 1, "b": 2}) == tokenize({"b": 2, "a": 1})
    assert tokenize({3, 1, 2}) == tokenize({1, 2, 3})
    assert tokenize([1, 2]) != tokenize((1, 2))


def test_impure_calls_are_unique():
    assert task_key(inc, (1,), {}, pure=False) != task_key(inc, (1,), {}, pure=False)


def test_arrays_hash_by_content():
    a = np.arange(1000)
    assert tokenize(a) == tokenize(np.arange(1000))
    assert tokenize(a) != tokenize(np.arange(1000) + 1)


def test_lambdas_hash_by_code():
    f = lambda x: x + 1
    assert task_key(f, (1,), {}) == task_key(f, (1,), {})


def test_functions_of_a_script_run_by_a_multiprocessing_child_hash_by_code():
    # Two scripts' ``step`` functions, each run as ``__mp_main__`` in a spawned child: their
    # calls are not one task because they share a name.
    def first(x):
        return x + 1

    def second(x):
        return x - 1

    for function in (first, second):
        function.__module__ = "__mp_main__"
        function.__qualname__ = "step"
    assert task_key(first, (1,), {}) != task_key(second, (1,), {})
    assert function_token(first) != function_token(second)


def test_map_keys_share_a_prefix_and_follow_the_arguments():
    from dist_client.keys import map_keys
    keys = map_keys(inc, [(1,), (2,), (1,)], {}, None, True)
    assert [k.split("-")[0] for k in keys] == ["inc"] * 3
    assert keys[0] == keys[2] == task_key(inc, (1,), {}) and keys[0] != keys[1]
    assert all(k.startswith("step-") for k in map_keys(inc, [(1,)], {}, "step", True))
    impure = map_keys(inc, [(1,), (1,)], {}, None, False)
    assert impure[0] != impure[1] and all(KEY.match(k) for k in impure)
    assert map_keys(inc, [(1,), (2,)], {}, ["a", "b"], True) == ["a", "b"]
    with pytest.raises(ValueError, match="2 keys for 1 tasks"):
        map_keys(inc, [(1,)], {}, ["a", "b"], True)


def test_a_function_reading_what_cannot_be_hashed_gets_unique_keys_from_map_too():
    from dist_client.keys import map_keys
    circular: list = []
    circular.append(circular)

    def reads_a_circular_list(x):
        return len(circular) + x

    keys = map_keys(reads_a_circular_list, [(1,), (1,)], {}, None, True)
    assert keys[0] != keys[1] and all(KEY.match(k) for k in keys)
    assert task_key(reads_a_circular_list, (1,), {}) not in keys


def test_map_keys_of_calls_with_an_unhashable_argument_are_each_call_s_own():
    import threading
    from dist_client.keys import map_keys
    lock = threading.Lock()  # (pickles with neither pickle nor cloudpickle)
    keys = map_keys(inc, [(1,), (lock,), (2,), (lock,)], {}, None, True)
    assert keys[0] == task_key(inc, (1,), {}) and keys[2] == task_key(inc, (2,), {})
    assert keys[1] != keys[3] and all(KEY.match(k) for k in keys)


def test_data_keys_follow_the_content_unless_told_not_to():
    from dist_client.keys import data_key
    assert data_key([1, 2]) == data_key([1, 2]) != data_key([1, 3])
    assert data_key([1, 2]).startswith("list-")
    assert data_key(5, hash=False) != data_key(5, hash=False)


def test_a_call_s_key_hashes_its_function_arguments_and_keywords_as_tokenize_does():
    calls = [(inc, (1,), {}), (inc, (1,), {"a": [1, 2]}), (sum, ([1, 2],), {}),
             (inc, ({3, 1},), {}), (lambda x: x, (1.5, None), {}), (inc, (), {"b": {2: 3}})]
    for func, args, kwargs in calls:
        token = tokenize(function_token(func), args, kwargs)
        assert task_key(func, args, kwargs) == f"{funcname(func)}-{token}"


def test_a_key_is_named_after_the_function_in_word_characters():
    def odd():
        pass
    for given, named in [("a b", "a_b"), ("<lambda>", "lambda"), ("x.y", "x.y"), ("", "function")]:
        odd.__name__ = given
        assert funcname(odd) == named


def test_keys_stay_what_earlier_releases_made():
    # Clients of different releases on one center share the tasks of equal calls.
    import operator
    assert task_key(sum, ([1, 2],), {}) == "sum-212610bb462acd299bbb826ca781b305"
    assert task_key(operator.add, (1, 2.5), {"x": None}) == "add-ccb228fef42e5b063e0e22496731e000"
