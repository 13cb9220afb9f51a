"""Signals a task brings on its worker's process: counted, and written into the stories of
the tasks that may have caused them (the state machine's side; the process's in
tests/integration/test_task_signals.py)."""
import signal

from dist_protocol.messages import WorkerTerminated
from dist_worker.events import SendToCenter, SignalReceived, Terminated
from dist_worker.task_signals import KeptHandlers, survived_signals


def test_a_signal_is_counted_and_told_in_the_stories_of_the_running_and_the_last_ended(
        worker):
    worker.compute("armed-an-alarm")
    worker.compute("running")
    worker.succeeded("armed-an-alarm")

    assert worker(SignalReceived("SIGALRM", stimulus_id="s1")) == []
    assert worker(SignalReceived("SIGALRM")) == []

    assert worker.state.signals == {"SIGALRM": 2}
    told = [entry for entry in worker.state.log if entry[3].startswith("SIGALRM-")]
    assert [(key, start, finish) for key, start, finish, _, _ in told] == [
        ("running", "executing", "executing"), ("armed-an-alarm", "memory", "memory")] * 2
    assert told[0][3] == "SIGALRM-s1"
    assert worker.state.tasks["running"].state == "executing"  # nothing else changed


def test_a_signal_with_no_task_run_yet_is_only_counted(worker):
    assert worker(SignalReceived("SIGUSR1")) == []
    assert worker.state.signals == {"SIGUSR1": 1}
    assert not [entry for entry in worker.state.log if entry[3].startswith("SIGUSR1-")]


def clock_at(worker, now):
    times = [now]
    worker.state.clock = lambda: times[0]
    return times


def test_a_sigterm_names_the_tasks_running_when_it_came(worker):
    now = clock_at(worker, 100.0)
    worker.compute("before")
    worker.succeeded("before")
    now[0] = 101.0
    worker.compute("sent-sigterm")
    worker.compute("running")
    # the signal, at 102; then the sender ended and another task started on its thread
    now[0] = 103.0
    worker.succeeded("sent-sigterm")
    worker.compute("started-after")

    assert worker(Terminated(at=102.0, within=0.5)) == [
        SendToCenter(WorkerTerminated(keys=["running", "sent-sigterm"]))]


def test_with_none_running_it_names_the_one_that_just_ended(worker):
    now = clock_at(worker, 100.0)
    worker.compute("sent-sigterm")
    worker.succeeded("sent-sigterm")
    now[0] = 100.4

    assert worker(Terminated(at=100.4, within=0.5)) == [
        SendToCenter(WorkerTerminated(keys=["sent-sigterm"]))]


def test_a_sigterm_long_after_the_last_task_names_none(worker):
    now = clock_at(worker, 100.0)
    worker.compute("long-ago")
    worker.succeeded("long-ago")
    now[0] = 160.0

    assert worker(Terminated(at=160.0, within=0.5)) == []


def test_the_worker_keeps_the_signals_that_stop_it_and_a_hangup_without_a_nanny():
    for nanny in (True, False):
        kept = survived_signals(nanny)
        assert signal.SIGALRM in kept and signal.SIGUSR1 in kept
        assert not {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL} & set(kept)
    assert signal.SIGHUP in survived_signals(True)
    assert signal.SIGHUP not in survived_signals(False)


def test_kept_handlers_are_put_back_once_replaced_and_named():
    def handler(signum, frame):
        pass

    before = signal.signal(signal.SIGUSR2, handler)
    try:
        kept = KeptHandlers([signal.SIGUSR2, signal.SIGUSR1])
        assert kept.put_back() == []
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # as a task run on the loop could
        assert kept.put_back() == ["SIGUSR2"]
        assert signal.getsignal(signal.SIGUSR2) is handler
        assert kept.put_back() == []
    finally:
        signal.signal(signal.SIGUSR2, before)
