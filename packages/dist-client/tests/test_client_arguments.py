"""The client's checks of the numbers in a call: what the center would refuse by closing the
connection is refused in the call, naming the argument."""
from __future__ import annotations

import math

import pytest
from dist_client.arguments import (duration, resource_amounts, seconds, whole_number,
                                   worker_names)
from dist_client.tasks import TaskBuilder


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_no_numbers_of_anything(value):
    with pytest.raises(ValueError, match="finite"):
        whole_number("retries", value)
    with pytest.raises(ValueError, match="finite"):
        seconds("timeout", value)
    with pytest.raises(ValueError, match=r"resources\['GPU'\]"):
        resource_amounts({"GPU": value})


def test_below_the_minimum_is_refused_and_the_rest_passes():
    assert whole_number("retries", 0, minimum=0) == 0
    assert whole_number("priority", 2.7) == 2  # as int() reads it
    assert whole_number("priority", -3) == -3
    with pytest.raises(ValueError, match="n must be at least 1, not -5"):
        whole_number("n", -5, minimum=1)
    assert seconds("timeout", 0) == 0.0
    with pytest.raises(ValueError, match="timeout must be at least 0 seconds"):
        seconds("timeout", -1)
    assert resource_amounts({"GPU": 0, "memory": 1.5}) == {"GPU": 0, "memory": 1.5}
    assert resource_amounts(None) is None and resource_amounts({}) is None
    with pytest.raises(ValueError, match="at least 0"):
        resource_amounts({"GPU": -1})


def test_things_that_are_not_numbers_or_names_are_type_errors():
    for value in ("1", None, True, [1]):
        with pytest.raises(TypeError, match="must be a number"):
            whole_number("retries", value)
    with pytest.raises(TypeError, match="not a string"):
        resource_amounts({1: 1})
    with pytest.raises(TypeError, match="mapping"):
        resource_amounts([("GPU", 1)])
    with pytest.raises(TypeError, match="workers: 7"):
        worker_names(["a", 7])
    assert worker_names("tcp://a:1") == ["tcp://a:1"]
    assert worker_names(("a", "b")) == ["a", "b"] and worker_names(None) is None


def test_task_options_go_through_the_checks():
    assert TaskBuilder.options("w", 1, 2, True, {"GPU": 1}) == {
        "workers": ["w"], "priority": 1, "retries": 2, "allow_other_workers": True,
        "resources": {"GPU": 1}}
    with pytest.raises(ValueError, match="retries"):
        TaskBuilder.options(retries=-1)
    with pytest.raises(TypeError, match="priority"):
        TaskBuilder.options(priority=False)  # a bool is no number here


def test_the_defaults_are_the_checked_defaults_and_each_call_has_its_own():
    first, second = TaskBuilder.options(), TaskBuilder.options()
    assert first == {"workers": None, "priority": 0, "retries": 0,
                     "allow_other_workers": False, "resources": None}
    assert first is not second  # actors add their options to it
    assert TaskBuilder.options(priority=0.0) == first


def test_durations_read_from_text_again_and_again_give_the_same_answer():
    for _ in range(3):
        assert duration("fifo_timeout", "60s") == 60.0
        assert duration("fifo_timeout", "100ms") == pytest.approx(0.1)
        assert duration("fifo_timeout", 2) == 2.0
        with pytest.raises(ValueError, match="fifo_timeout must be seconds"):
            duration("fifo_timeout", "60 parsecs")
        with pytest.raises(ValueError, match="at least 0"):
            duration("fifo_timeout", -1)
        with pytest.raises(TypeError, match="timeout must be a number"):
            duration("timeout", None)


def test_a_task_built_positionally_has_the_fields_it_would_have_by_keyword():
    # ``TaskBuilder.build`` makes a task with only the usual options positionally (once per
    # task of a map): a field of ``TaskSpec`` moved or put in between would send a value
    # under another field's name.
    from dist_protocol.messages import TaskSpec
    from dist_protocol.serialize import dumps_function

    function = dumps_function(lambda x: x)  # (code: the task states its Python)
    options = TaskBuilder.options(workers=["w"], priority=3, retries=2,
                                  allow_other_workers=True, resources={"GPU": 1})
    built = TaskBuilder.build("k", function, (1,), {}, options, pickled_with="tag")
    by_keyword = TaskSpec(key="k", function=function, args=built.args, deps=[],
                          pickled_with="tag", **options)
    assert built == by_keyword
    assert built.resources == {"GPU": 1} and built.retries == 2 and built.priority == 3


def offset(x):
    return x + 1


def test_only_a_task_holding_code_states_the_python_that_pickled_it():
    # Code pickled by value runs only on the Python that pickled it; a function pickled by
    # reference with data arguments runs on any, as dask's do.
    from dist_protocol.serialize import dumps_function

    options = TaskBuilder.options()
    by_reference = TaskBuilder.build("a", dumps_function(math.sqrt), ([1.0, {"k": 2}],), {},
                                     options, pickled_with="tag")
    assert by_reference.pickled_with is None
    assert TaskBuilder.build("b", dumps_function(offset), (1,), {}, options,
                             pickled_with="tag").pickled_with is None  # importable by name
    assert TaskBuilder.build("c", dumps_function(lambda x: x), (1,), {}, options,
                             pickled_with="tag").pickled_with == "tag"
    in_argument = TaskBuilder.build("d", dumps_function(map), (lambda x: x, [1]), {}, options,
                                    pickled_with="tag")
    assert in_argument.pickled_with == "tag"
