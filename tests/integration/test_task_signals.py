"""A task's alarm, interval timer or signal to its own process leaves its worker process
alive (dist_worker.task_signals): by default SIGALRM, SIGUSR1 and their kind end a process,
and each killed the worker with every result it held. SIGTERM and Ctrl-C still stop it."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(90)

HEARTBEAT_TIMEOUT = 60.0  # only a death the worker announces could be seen in time
RESULT_TIMEOUT = 30
PROMPTLY = 10.0


def arm_an_alarm(x):
    import signal

    signal.alarm(1)
    return x


def arm_a_timer(which):
    import signal

    signal.setitimer(getattr(signal, which), 0.05)
    total = 0
    for i in range(3_000_000):  # a virtual or profiling timer counts the process's CPU time
        total += i
    return which


def signal_own_process(name):
    import os
    import signal

    os.kill(os.getpid(), getattr(signal, name))
    return name


@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
def test_a_worker_survives_the_signals_its_tasks_bring_on(make_cluster, wait_until, nanny):
    cluster = make_cluster(n_workers=1, nthreads=2, nanny=nanny,
                           heartbeat_timeout=HEARTBEAT_TIMEOUT)
    e = cluster.executor()
    [worker] = cluster.workers
    pid = cluster.worker_pids(e)[worker.address]
    held = e.scatter([1, 2, 3])

    alarm = e.submit(arm_an_alarm, 7)
    assert alarm.result(timeout=RESULT_TIMEOUT) == 7
    wait_until(lambda: "got SIGALRM" in worker.output(), PROMPTLY, "the alarm to fire")
    assert alarm.key in worker.output()  # named as the task that last ended
    assert e.gather(e.map(arm_a_timer, ["ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"]),
                    timeout=RESULT_TIMEOUT) == ["ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"]
    names = ["SIGUSR1", "SIGUSR2", "SIGXFSZ", "SIGPIPE"] + (["SIGHUP"] if nanny else [])
    assert e.gather(e.map(signal_own_process, names), timeout=RESULT_TIMEOUT) == names

    for name in ("SIGVTALRM", "SIGPROF", *names):
        if name != "SIGPIPE":  # (ignored by Python itself)
            wait_until(lambda name=name: f"got {name}" in worker.output(), PROMPTLY,
                       f"the worker to log {name}")
    assert cluster.worker_pids(e) == {worker.address: pid}
    assert e.gather(held, timeout=RESULT_TIMEOUT) == [1, 2, 3]
    assert "restarting" not in worker.output(), worker.output()
    story = e.story(alarm)
    assert any(entry["stimulus_id"].startswith("SIGALRM-") for entry in story), story
    counted = wait_until(lambda: cluster.worker_table(e)[worker.address]["metrics"].get(
        "signals", {}).get("SIGUSR1"), PROMPTLY, "the heartbeat to count the signals")
    assert counted == 1
    assert cluster.worker_table(e)[worker.address]["metrics"]["signals"]["SIGALRM"] == 2

    worker.terminate()  # SIGTERM still stops it cleanly, nanny and all
    assert worker.wait(RESULT_TIMEOUT) == 0
    wait_until(lambda: not e.ncores(), PROMPTLY, "the center to drop the worker")


def ignore_stop_signals(x):
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return False  # (on a pool thread signal.signal raises ValueError, as in dask)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return True


def test_a_task_run_on_the_event_loop_cannot_keep_its_worker_from_stopping(
        make_cluster, wait_until):
    # A fast function runs inline, on the main thread, where signal.signal works: a task that
    # ignored SIGTERM there made a worker that a service manager's SIGTERM no longer stopped.
    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    [worker] = cluster.workers
    for first in range(0, 2000, 100):
        if any(e.gather(e.map(ignore_stop_signals, range(first, first + 100)),
                        timeout=RESULT_TIMEOUT)):
            break
    else:
        pytest.fail("the function never ran on the worker's event loop")
    wait_until(lambda: "replaced the worker's handler of SIGINT, SIGTERM" in worker.output(),
               PROMPTLY, "the worker to say it put its handlers back")

    worker.terminate()
    assert worker.wait(RESULT_TIMEOUT) == 0
