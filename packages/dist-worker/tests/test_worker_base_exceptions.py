"""Any BaseException from user code errs that task, and the thread that ran it takes the next.

``sys.exit()`` in a task used to end the pool thread: the task stayed "executing" forever and a
worker with one thread never ran anything again.
"""
import asyncio
import sys

import pytest
from dist_protocol.serialize import deserialize, dumps_function, serialize
from dist_worker.events import Execute, ExecutionFailed, ExecutionSucceeded
from dist_worker.execution import run_task
from dist_worker.task_runner import TaskRunner

from dist_protocol.environment import describe, local_environment

HERE = describe(local_environment())


class Abort(BaseException):
    """A user's own BaseException (as some libraries define for cancellation)."""


def exit_with_usage():
    sys.exit("usage: task X")


def exit_with_code():
    sys.exit(3)


def interrupt():
    raise KeyboardInterrupt("stop it")


def generator_exit():
    raise GeneratorExit("closed generator")


def abort():
    raise Abort("abandoned")


def run(function, key="k"):
    return run_task(Execute(key, dumps_function(function), None, {}))


@pytest.mark.parametrize("function, exception_type, message", [
    (exit_with_usage, SystemExit, "usage: task X"),
    (exit_with_code, SystemExit, "3"),
    (interrupt, KeyboardInterrupt, "stop it"),
    (generator_exit, GeneratorExit, "closed generator"),
    (abort, Abort, "abandoned"),
])
def test_a_base_exception_errs_the_task_with_its_type_and_message(function, exception_type,
                                                                 message):
    outcome = run(function)

    assert type(outcome) is ExecutionFailed
    error = outcome.error
    assert (error.exception_type, error.message) == (exception_type.__name__, message)
    assert f"{exception_type.__name__}: {message}" in error.traceback
    assert function.__name__ in error.traceback
    rebuilt = deserialize(error.exception)
    assert type(rebuilt) is exception_type and str(rebuilt) == message


class ExitOnUnpickle:
    def __reduce__(self):
        return (sys.exit, ("rebuilt on the worker",))


def test_a_base_exception_while_loading_the_arguments_errs_the_task():
    outcome = run_task(Execute("k", "builtins:repr", serialize([[ExitOnUnpickle()], {}]), {}))

    assert type(outcome) is ExecutionFailed
    assert outcome.error.message.startswith(f"could not load task k on the worker ({HERE}): ")
    assert "rebuilt on the worker" in outcome.error.message


def test_an_exception_whose_str_fails_still_errs_the_task():
    class Mute(BaseException):
        def __str__(self):
            raise ValueError("no words")

    def fail():
        raise Mute()

    outcome = run(fail)

    assert type(outcome) is ExecutionFailed
    assert outcome.error.exception_type == "Mute"
    assert "str() failed" in outcome.error.message


def test_a_single_pool_thread_survives_every_kind_and_runs_the_next_task():
    async def main():
        outcomes: list = []
        arrived = asyncio.Event()
        functions = [exit_with_usage, interrupt, generator_exit, abort, exit_with_code]

        def on_done(batch):
            outcomes.extend(batch)
            if len(outcomes) == len(functions) + 1:
                arrived.set()
        runner = TaskRunner(1, asyncio.get_running_loop(), on_done)
        try:
            for i, function in enumerate(functions):
                runner.submit(Execute(f"bad-{i}", dumps_function(function), None, {}))
            runner.submit(Execute("good", "operator:add", serialize([[40, 2], {}]), {}))
            await asyncio.wait_for(arrived.wait(), 20)
        finally:
            runner.close()
        by_key = {outcome.key: outcome for outcome in outcomes}
        assert [type(by_key[f"bad-{i}"]) for i in range(len(functions))] == (
            [ExecutionFailed] * len(functions))
        assert type(by_key["good"]) is ExecutionSucceeded and by_key["good"].value == 42
    asyncio.run(main())


def reschedule():
    from dist_protocol.task_context import Reschedule
    raise Reschedule()


# dask.distributed's own, as a task written for dask raises it (known by its module and name)
DaskReschedule = type("Reschedule", (Exception,), {"__module__": "distributed.exceptions"})


class NotDasks(Exception):
    pass


@pytest.mark.parametrize("raised, asks", [(reschedule, True), (DaskReschedule, True),
                                          (type("Sub", (DaskReschedule,), {}), True),
                                          (NotDasks, False), (ValueError, False)])
def test_a_task_raising_reschedule_asks_the_center_to_run_it_again(raised, asks):
    def task():
        if isinstance(raised, type):
            raise raised()
        raised()

    outcome = run(task)

    assert type(outcome) is ExecutionFailed and outcome.error.reschedule is asks
    assert outcome.error.exception is not None  # whole, for a center that takes it as an error
