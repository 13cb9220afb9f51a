"""The class of a task's value, pickled for clients (protocol feature result-types)."""
import fractions
import pickle

from dist_protocol.serialize import Payload, deserialize, dumps_function, serialize
from dist_worker.events import Execute, ExecutionSucceeded
from dist_worker.execution import run_task
from dist_worker.result_types import MAX_PICKLED_TYPE_BYTES, pickled_type


def test_a_class_a_module_defines_is_pickled_by_reference_once():
    pickled = pickled_type(fractions.Fraction)
    assert pickle.loads(pickled) is fractions.Fraction
    assert len(pickled) < 100  # the module and the name, not the class's code
    assert pickled_type(fractions.Fraction) is pickled  # remembered


def test_a_class_no_module_defines_goes_by_value_when_small_and_not_at_all_when_large():
    small = type("Small", (), {})
    large = type("Large", (), {f"m{i}": (lambda self, i=i: i) for i in range(100)})
    assert deserialize(Payload("pickle", [pickled_type(small)])).__name__ == "Small"
    assert pickled_type(large) is None  # (over MAX_PICKLED_TYPE_BYTES by value)
    assert MAX_PICKLED_TYPE_BYTES == 1024


def test_a_finished_task_carries_the_class_of_its_value():
    outcome = run_task(Execute("k", dumps_function(fractions.Fraction),
                               serialize([[1, 3], {}]), {}))
    assert type(outcome) is ExecutionSucceeded
    assert outcome.type == "Fraction"
    assert pickle.loads(outcome.type_pickled) is fractions.Fraction


class _Unhashable(type):
    """A metaclass comparing its classes by name: they cannot be dictionary keys."""

    def __eq__(cls, other):
        return getattr(other, "__name__", None) == cls.__name__

    __hash__ = None


def test_a_class_that_cannot_be_a_dictionary_key_is_looked_at_without_an_error():
    odd = _Unhashable("Odd", (), {})
    pickled = pickled_type(odd)  # (not remembered: the look-up's TypeError is not the task's)
    assert pickled is None or deserialize(Payload("pickle", [pickled])).__name__ == "Odd"
