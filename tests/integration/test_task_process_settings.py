"""Settings of its process that a task changes do not reach the threads the worker starts
after it (dist_worker.execution): ``threading.stack_size`` is process-wide; nor a stack dump
it left armed, nor a lower limit on open files."""
from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.timeout(90)

RESULT_TIMEOUT = 30
PROMPTLY = 10.0


def make_thread_stacks_small():
    import threading

    threading.stack_size(32 * 1024)
    return "small"


def secede_for_a_while(seconds):
    import time

    from dist_client import rejoin, secede

    secede()  # the worker starts a thread in this one's place
    time.sleep(seconds)
    rejoin()
    return seconds


def pickle_a_nested_list(depth):
    import pickle

    nested = None
    for _ in range(depth):
        nested = [nested]
    return len(pickle.dumps(nested))  # (recurses in C, on the thread's stack)


def test_thread_stacks_a_task_made_small_are_not_the_worker_s(make_cluster):
    # threading.stack_size is process-wide: set small by a task, it gave the thread that the
    # worker started for a seceded task a 32 KiB stack, and the next task that recursed in C
    # on it ended the worker process with SIGSEGV.
    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    assert e.submit(make_thread_stacks_small).result(timeout=RESULT_TIMEOUT) == "small"
    seceded = e.submit(secede_for_a_while, 3)
    nested = e.submit(pickle_a_nested_list, 300)
    assert nested.result(timeout=RESULT_TIMEOUT) > 300
    assert seceded.result(timeout=RESULT_TIMEOUT) == 3


def block_the_import_of(name):
    import sys

    sys.modules[name] = None  # as test code does to hide a package
    return name


def test_a_task_blocking_the_import_of_cloudpickle_leaves_later_tasks_loadable(make_cluster):
    # Every function sent by value is rebuilt with cloudpickle: blocked by a task, every
    # later task of the worker with a function new to it failed with "import of cloudpickle
    # halted; None in sys.modules", for the worker process's life.
    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    pid = cluster.worker_pids(e)
    for name in ("cloudpickle", "cloudpickle.cloudpickle"):
        assert e.submit(block_the_import_of, name).result(timeout=RESULT_TIMEOUT) == name
        offset = len(name)
        assert e.submit(lambda x, offset=offset: x + offset, 1).result(
            timeout=RESULT_TIMEOUT) == 1 + offset
    assert e.gather(e.map(lambda x: x * 3, range(20)), timeout=RESULT_TIMEOUT) == [
        x * 3 for x in range(20)]
    assert cluster.worker_pids(e) == pid
    assert "the block is lifted" in cluster.workers[0].output()


def arm_a_repeating_dump(path, interval):
    import faulthandler

    dumps = open(path, "w")  # (kept open by faulthandler while armed)
    faulthandler.dump_traceback_later(interval, repeat=True, file=dumps)
    return path


def dumps_written_meanwhile(path, seconds):
    import os
    import time

    before = os.path.getsize(path)
    time.sleep(seconds)  # (the window watched, on the worker: not a wait for an event)
    return os.path.getsize(path) - before


def test_a_stack_dump_a_task_left_armed_stops_when_it_ends(make_cluster, tmp_path):
    # faulthandler.dump_traceback_later(..., repeat=True) left armed by a task wrote every
    # thread's stack into the worker's log every period, for the worker process's life.
    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    path = str(tmp_path / "dumps.txt")
    assert e.submit(arm_a_repeating_dump, path, 0.02).result(timeout=RESULT_TIMEOUT) == path
    assert e.submit(dumps_written_meanwhile, path, 0.5).result(timeout=RESULT_TIMEOUT) == 0


def lower_the_open_file_limit():
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = len(os.listdir("/proc/self/fd")) - 1  # (less listdir's own)
    resource.setrlimit(resource.RLIMIT_NOFILE, (held, hard))  # no descriptor left to open
    return soft


def a_megabyte():
    return b"x" * 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_an_open_file_limit_a_task_lowered_is_put_back(make_cluster):
    # A task that lowered RLIMIT_NOFILE below what the worker held left it unable to accept
    # or open a connection (or a spill file) for the rest of its life.
    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    [worker] = cluster.workers
    started_with = e.submit(lower_the_open_file_limit).result(timeout=RESULT_TIMEOUT)
    other = cluster.executor()  # gathers over a new connection to the worker
    assert len(other.submit(a_megabyte).result(timeout=RESULT_TIMEOUT)) == 2**20
    assert f"put back to {started_with}" in worker.output()


def forbid_every_permission_on_new_files():
    import os

    os.umask(0o777)  # process-wide
    return "forbidden"


def forty_megabytes(i):
    return bytes([i]) * (40 * 2**20)


def modes_of_files_under(directory):
    import os
    import stat

    return [stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
            for folder, _, names in os.walk(directory) for name in names]


def test_a_file_creation_mask_a_task_set_does_not_reach_the_spill_files(make_cluster, tmp_path):
    # A task's os.umask(0o777) left every spill file made after it with mode 000: a worker
    # run as any user but root could not open it again to read its value back.
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(cluster.address, "--memory-limit", "200MB",
                                            "--local-directory", str(tmp_path))
    cluster.workers.append(worker)
    e = cluster.executor()
    assert e.submit(forbid_every_permission_on_new_files).result(
        timeout=RESULT_TIMEOUT) == "forbidden"
    kept = [e.submit(forty_megabytes, i) for i in range(6)]  # 240 MB on a 200 MB worker
    assert [len(value) for value in e.gather(kept, timeout=RESULT_TIMEOUT)] == [40 * 2**20] * 6
    modes = e.submit(modes_of_files_under, str(tmp_path)).result(timeout=RESULT_TIMEOUT)
    assert modes and all(mode & 0o600 == 0o600 for mode in modes), [oct(m) for m in modes]


def turn_warnings_into_errors():
    import warnings

    warnings.simplefilter("error")  # process-wide
    return "errors"


def test_warnings_a_task_turned_into_errors_do_not_keep_a_worker_from_stopping(make_cluster):
    # The worker's own warnings were raised as errors after the task: at an operator's
    # SIGTERM a worker without a nanny met a ResourceWarning as it closed, and never exited.
    cluster = make_cluster(n_workers=2, nthreads=1, nanny=False)
    e = cluster.executor()
    worker, other = cluster.workers
    assert e.submit(turn_warnings_into_errors, workers=[worker.address]).result(
        timeout=RESULT_TIMEOUT) == "errors"
    # (a peer's connection to it: the transport the loop's close warned about)
    value = e.submit(a_megabyte, workers=[worker.address])
    assert e.submit(len, value, workers=[other.address]).result(timeout=RESULT_TIMEOUT) == 2**20
    worker.terminate()
    assert worker.wait(timeout=PROMPTLY * 3) == 0


def arm_a_repeating_timer():
    import signal

    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)  # SIGALRM every millisecond, for good
    return "armed"


def test_a_timer_a_task_left_armed_does_not_end_a_stopping_worker(make_cluster):
    # The worker survives SIGALRM on its event loop; once the loop closed on an operator's
    # SIGTERM, the signal had its default action again and ended the worker (exit -14)
    # before it removed its spill files or ended the processes its tasks left.
    cluster = make_cluster(n_workers=1, nthreads=1, nanny=False)
    e = cluster.executor()
    [worker] = cluster.workers
    assert e.submit(arm_a_repeating_timer).result(timeout=RESULT_TIMEOUT) == "armed"
    assert e.submit(sum, [1, 2]).result(timeout=RESULT_TIMEOUT) == 3
    worker.terminate()
    assert worker.wait(timeout=PROMPTLY * 3) == 0


def switch_threads_every_ten_seconds():
    sys.setswitchinterval(10)  # process-wide
    return "slow"


def spin(seconds):
    import time

    end, turns = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        turns += 1
    return turns > 0


def test_a_switch_interval_a_task_raised_does_not_silence_its_worker(make_cluster):
    # At a switch interval of 10 s, a CPU-bound task after the one that set it kept the
    # event loop's thread from the interpreter lock: no heartbeat went out, and the center
    # removed the worker as silent while the task ran.
    cluster = make_cluster(n_workers=1, nthreads=1, heartbeat_timeout=3)
    e = cluster.executor()
    assert e.submit(switch_threads_every_ten_seconds).result(timeout=RESULT_TIMEOUT) == "slow"
    assert e.submit(spin, 6).result(timeout=RESULT_TIMEOUT)
    assert "silent" not in cluster.center.output()
    assert cluster.workers[0].output().count("Registered with center") == 1


def nested_a_million_deep_under_a_raised_limit():
    import sys

    sys.setrecursionlimit(10**6)  # (as a task that needs deep recursion does)
    nested: list = []
    for _ in range(10**6):
        nested = [nested]
    return nested


def test_a_result_too_deep_to_pickle_under_a_recursion_limit_a_task_raised_errs(make_cluster):
    # The worker pickles a result on the task's thread: under the task's limit of a million,
    # a list nested a million deep overflowed that thread's stack in C (SIGSEGV), the worker
    # process gone, and each retry ended another.
    cluster = make_cluster(n_workers=1, nthreads=1)
    e = cluster.executor()
    deep = e.submit(nested_a_million_deep_under_a_raised_limit)
    with pytest.raises(Exception, match="cannot be serialized") as failed:
        deep.result(timeout=RESULT_TIMEOUT)
    assert "recursion" in str(failed.value)
    assert e.submit(pickle_a_nested_list, 300).result(timeout=RESULT_TIMEOUT) > 300
    assert cluster.workers[0].output().count("Registered with center") == 1
