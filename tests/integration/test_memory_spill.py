"""Data beyond memory: workers spill results to disk past their target, pause past their pause
threshold, and restart only as a last resort -- losing nothing that finished."""
from __future__ import annotations

import logging
import pickle
import signal
import subprocess


import pytest

from dist_client import as_completed, wait

pytest.importorskip("numpy")

RESULT_TIMEOUT = 60
MB = 10**6
MiB = 2**20


def block(i, nbytes=50 * MB):
    """A result that really occupies ``nbytes`` (every page written, incompressible) and can be
    checked: its first element is ``i``."""
    import numpy
    values = numpy.random.default_rng(i).random(nbytes // 8)
    values[0] = i
    return values


def checksum(i, nbytes=50 * MB):
    return float(block(i, nbytes).sum())


def metrics_of(cluster, executor, worker):
    return cluster.worker_table(executor)[worker.address]["metrics"]


def test_ten_50mb_results_on_a_300mb_worker_spill_and_all_come_back(make_cluster, wait_until):
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(cluster.address, "--memory-limit", "300MB",
                                            nanny=True, name="small")
    cluster.workers.append(worker)
    executor = cluster.executor()
    futures = [executor.submit(block, i) for i in range(10)]  # 500 MB on a 300 MB worker
    results = executor.gather(futures, timeout=RESULT_TIMEOUT)
    for i, values in enumerate(results):
        assert values[0] == i and float(values.sum()) == checksum(i)
    metrics = wait_until(lambda: metrics_of(cluster, executor, worker), 5, "a heartbeat")
    assert metrics["spilled"] > 0 and metrics["spilled_disk"] > 0
    assert metrics["managed"] <= 0.7 * 300 * MB
    assert len(worker.matching("Registered with center at")) == 1  # never restarted
    # A task reads spilled inputs back transparently.
    total = executor.submit(sum, [executor.submit(lambda v: float(v.sum()), f)
                                  for f in futures])
    assert total.result(timeout=RESULT_TIMEOUT) == pytest.approx(
        sum(checksum(i) for i in range(10)))
    # Freed results free their disk space.
    del futures, results, total
    wait_until(lambda: metrics_of(cluster, executor, worker).get("spilled_disk") == 0, 10,
               "the spill files to be removed")
    assert len(worker.matching("Registered with center at")) == 1


def slow_inc(x, delay):
    import time
    time.sleep(delay)
    return x + 1


def hold_memory(nbytes, start_after, release):
    """Run ``start_after`` seconds, then hold ``nbytes`` outside any result (unmanaged memory,
    which spilling cannot free) until the file ``release`` exists."""
    import os
    import time

    import numpy
    time.sleep(start_after)
    buffer = numpy.ones(nbytes, dtype=numpy.uint8)
    while not os.path.exists(release):
        time.sleep(0.01)
    return len(buffer)


def beside_a_tight_worker(make_cluster, *options, **kwargs):
    """A cluster of one worker and a second, ``tight``, started with ``options`` (its memory
    limit, where it spills...) and ``kwargs``; an executor that sees both."""
    cluster = make_cluster(n_workers=1)
    tight = cluster.processes.start_worker(cluster.address, *options, name="tight", **kwargs)
    cluster.workers.append(tight)
    executor = cluster.executor()
    cluster.wait_for_workers(executor, 2)
    return cluster, tight, executor


def test_a_task_past_pause_pauses_the_worker_moves_its_queue_and_resumes(make_cluster,
                                                                       wait_until, tmp_path):
    limit = 400 * MiB
    cluster, tight, executor = beside_a_tight_worker(make_cluster, "--memory-limit", str(limit),
                                                     nthreads=2)
    lean = cluster.workers[0]
    baseline = wait_until(lambda: metrics_of(cluster, executor, tight).get("memory"), 10,
                          "a heartbeat")
    data = executor.scatter(list(range(12)), workers=[tight.address])
    # The hog holds its memory until this file exists, however long the queue takes elsewhere.
    release = tmp_path / "release"
    # Past 80% of the limit, well under 95%, once the queue below is on the worker.
    hog = executor.submit(hold_memory, int(0.875 * limit) - baseline, 1.0, str(release),
                          workers=["tight"])
    queued = [executor.submit(slow_inc, x, 0.3) for x in data]  # they go where their data is
    wait_until(lambda: cluster.worker_table(executor)[tight.address]["status"] == "paused",
               15, "the worker to pause")
    # Everything queued on it finishes elsewhere while it stays paused: the center moved it.
    assert executor.gather(queued, timeout=RESULT_TIMEOUT) == list(range(1, 13))
    assert not hog.done()
    assert cluster.worker_table(executor)[tight.address]["status"] == "paused"
    assert lean.address in {executor.who_has([f])[f.key][0] for f in queued}
    release.touch()
    assert hog.result(timeout=RESULT_TIMEOUT) == int(0.875 * limit) - baseline
    wait_until(lambda: cluster.worker_table(executor)[tight.address]["status"] == "running",
               15, "the worker to resume")
    assert executor.submit(slow_inc, 100, 0, workers=["tight"]).result(
        timeout=RESULT_TIMEOUT) == 101
    assert "pausing new work" in tight.output() and "resuming work" in tight.output()


def fill_and_check(cluster, executor, tight, n, wait_until, while_paused=lambda: None):
    """``n`` results on ``tight``, enough to pause it: ``while_paused()`` runs once it has
    paused; then every result comes back right. The worker may pause before it has run all
    ``n``: releasing the results it has lets it resume and run the rest, so each result is
    released once checked."""
    futures = [executor.submit(block, i, workers=["tight"]) for i in range(n)]
    wait_until(lambda: cluster.worker_table(executor)[tight.address]["status"] == "paused",
               30, "the worker to pause")
    while_paused()
    checked = set()
    for future in as_completed(futures, timeout=RESULT_TIMEOUT):
        i = futures.index(future)
        values = future.result()
        assert values[0] == i and float(values.sum()) == checksum(i)
        checked.add(i)
        future.release()
    assert checked == set(range(n))
    assert tight.popen.poll() is None  # no crash, no exit


@pytest.fixture
def small_disk(tmp_path):
    """A 120 MB file system (tmpfs), unmounted at the end."""
    where = tmp_path / "small-disk"
    where.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120m", "tmpfs", str(where)],
                       check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs to fill up here ({exc}); needs root")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False, timeout=10)


def test_a_full_disk_warns_and_pauses_the_worker_and_loses_nothing(make_cluster, small_disk,
                                                                   wait_until):
    cluster, tight, executor = beside_a_tight_worker(make_cluster, "--memory-limit", "400MB",
                                                     "--local-directory", str(small_disk))
    # 350 MB: past the target (240 MB) by two results, which fill the disk, and a third.
    def spilled_and_warned():
        # The warning is logged as the worker pauses, and read from its pipe by a thread; its
        # metrics reach the center with its next heartbeat: each may come just after the pause.
        wait_until(lambda: "cannot spill to" in tight.output(), 10, "the worker's warning")
        output = tight.output()
        assert "no space left" in output.lower(), output

        def metrics_say_so():
            metrics = metrics_of(cluster, executor, tight)
            return (metrics["spilled_disk"] > 0
                    and "no space left" in (metrics.get("spill_error") or "").lower())
        wait_until(metrics_say_so, 10, "the worker's metrics to say the disk is full")

    fill_and_check(cluster, executor, tight, 7, wait_until, spilled_and_warned)
    # Memory and disk freed: the worker spills again and resumes.
    wait_until(lambda: cluster.worker_table(executor)[tight.address]["status"] == "running",
               30, "the worker to resume")
    assert executor.submit(slow_inc, 1, 0, workers=["tight"]).result(
        timeout=RESULT_TIMEOUT) == 2


def test_a_worker_whose_disk_is_full_is_marked_the_client_warned_and_work_goes_elsewhere(
        make_cluster, small_disk, wait_until, caplog):
    """A worker that cannot spill pauses at its spill threshold, and the tasks kept to it
    waited in silence until the user's own timeout. The center now shows why, the client
    logs it once naming the worker, the worker's log says it once (not at each of the
    pauses and resumptions that follow), the tasks that can run elsewhere do, and those kept
    to it wait, not fail, until its disk has room again."""
    caplog.set_level(logging.INFO, logger="dist_client")
    cluster, tight, executor = beside_a_tight_worker(make_cluster, "--memory-limit", "400MB",
                                                     "--local-directory", str(small_disk))
    # 350 MB: past the target (240 MB) by two results, which fill the disk, and a third.
    kept = [executor.submit(block, i, workers=["tight"]) for i in range(7)]
    wait_until(lambda: cluster.worker_table(executor)[tight.address]["status"] == "paused",
               30, "the worker to pause")

    def client_said(what: str) -> list[str]:
        return [r.getMessage() for r in caplog.records
                if "tight" in r.getMessage() and what in r.getMessage()]
    wait_until(lambda: client_said("cannot spill"), 10, "the client's warning")
    warning = client_said("cannot spill")[0]
    assert tight.address in warning and "no space left" in warning.lower(), warning
    shown = executor.scheduler_info()["workers"][tight.address]
    assert "no space left" in shown["cannot_spill"].lower(), shown
    # Work that can run elsewhere does, while the worker's disk stays full.
    assert executor.gather(executor.map(slow_inc, range(20), [0] * 20, pure=False),
                           timeout=RESULT_TIMEOUT) == list(range(1, 21))
    assert not any(future.status == "error" for future in kept)
    assert executor.scheduler_info()["workers"][tight.address]["cannot_spill"]
    # A wait that times out meanwhile says why the work kept to it is late (before: a bare
    # "not done within 1 s"); the paused worker starts no task more.
    kept.append(executor.submit(block, 7, workers=["tight"]))
    with pytest.raises(TimeoutError, match=r"not done within 1 s \(meanwhile 1 of 2 workers "
                       r"cannot spill to disk.*tight \(.*no space left"):
        kept[-1].result(timeout=1)
    with pytest.raises(TimeoutError, match=r"gather: not done within 1 s \(meanwhile .*tight"):
        executor.gather(kept, timeout=1)
    # Room made (results released as they are read): the kept tasks run, nothing lost.
    for future in as_completed(kept, timeout=RESULT_TIMEOUT):
        i = kept.index(future)
        assert future.result()[0] == i
        future.release()
    wait_until(lambda: client_said("spills to disk again"), 30,
               "the client to hear it spills again")
    assert len(client_said("cannot spill")) == 1, client_said("cannot spill")
    assert tight.output().count("pausing new work") == 1, tight.output()


def test_an_unwritable_local_directory_warns_at_start_and_pauses_instead_of_failing(
        make_cluster, tmp_path, wait_until):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the directory should be")
    cluster, tight, executor = beside_a_tight_worker(make_cluster, "--memory-limit", "300MB",
                                                     "--local-directory", str(blocker / "spill"))
    wait_until(lambda: "cannot spill to" in tight.output(), 10, "the warning at start")

    def warned():
        # Set as the worker pauses; the center hears it with the worker's next heartbeat,
        # and between two tries of the disk the worker has no error to report.
        wait_until(lambda: "Not a directory" in (
            metrics_of(cluster, executor, tight).get("spill_error") or ""), 10,
            "the worker's metrics to say why it cannot spill")

    fill_and_check(cluster, executor, tight, 4, wait_until, warned)  # 200 MB: past the target


def one_small_worker(make_cluster, limit, directory):
    """A cluster of one worker (with its nanny) of memory ``limit`` spilling in ``directory``,
    and an executor on it."""
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(cluster.address, "--memory-limit", limit,
                                            "--local-directory", str(directory), nanny=True,
                                            name="small")
    cluster.workers.append(worker)
    return cluster, worker, cluster.executor()


def test_spill_files_of_a_killed_worker_go_when_it_restarts_and_all_go_at_exit(
        make_cluster, tmp_path, wait_until):
    cluster, worker, executor = one_small_worker(make_cluster, "200MB", tmp_path)
    futures = [executor.submit(block, i, 25 * MB) for i in range(6)]  # past the 120 MB target
    wait(futures, timeout=RESULT_TIMEOUT)

    def spill_files():
        return [path for path in tmp_path.glob("dist-worker-*/*")]
    wait_until(spill_files, 10, "results to spill")
    [killed_folder] = {path.parent for path in spill_files()}
    worker.kill_worker_process()  # as the kernel's out-of-memory killer would
    worker.wait_registered(nth=2)
    assert not killed_folder.exists()
    results = executor.gather(futures, timeout=RESULT_TIMEOUT)  # recomputed
    assert [values[0] for values in results] == list(range(6))
    worker.signal_group(signal.SIGTERM)
    assert worker.wait() == 0
    assert list(tmp_path.iterdir()) == []


def test_a_value_too_large_for_a_worker_is_scattered_where_it_fits_or_refused(make_cluster):
    import numpy
    cluster = make_cluster(n_workers=0)
    small = cluster.processes.start_worker(cluster.address, "--memory-limit", "100MB",
                                           nanny=True, name="small")
    cluster.workers.append(small)
    executor = cluster.executor()
    big = numpy.zeros(150 * MB, dtype=numpy.uint8)  # pages never written: no memory here
    with pytest.raises(ValueError, match="as large as the memory limit of worker"):
        executor.scatter(big)
    [little] = executor.scatter([numpy.ones(MB)])  # the worker is still there, and takes more
    assert executor.submit(numpy.sum, little).result(timeout=RESULT_TIMEOUT) == MB
    large = cluster.processes.start_worker(cluster.address, "--memory-limit", "400MB",
                                           name="large")
    cluster.workers.append(large)
    cluster.wait_for_workers(executor, 2)
    future = executor.scatter(big)
    assert executor.who_has([future])[future.key] == [large.address]
    assert executor.submit(numpy.sum, future).result(timeout=RESULT_TIMEOUT) == 0
    assert len(small.matching("Registered with center at")) == 1  # never restarted


def test_a_result_larger_than_the_spill_space_stays_and_the_worker_goes_on(make_cluster,
                                                                             tmp_path,
                                                                             wait_until):
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(
        cluster.address, "--memory-limit", "400MB", "--max-spill", "50MB",
        "--local-directory", str(tmp_path), nanny=True, name="small")
    cluster.workers.append(worker)
    executor = cluster.executor()
    # 300 MB, incompressible: past the target (240 MB) and, with the process, past pause
    # (320 MB); the spill space can never take it, so it stays in memory.
    big = executor.submit(block, 7, 300 * MB)
    values = big.result(timeout=RESULT_TIMEOUT)
    total = float(values.sum())
    del values
    wait_until(lambda: f"keeping {big.key}" in worker.output(), 10, "the worker's warning")
    # The worker does not pause for it: it would wait for ever, since only freeing it helps.
    assert executor.submit(slow_inc, 1, 0).result(timeout=RESULT_TIMEOUT) == 2
    assert executor.submit(lambda v: float(v.sum()), big).result(
        timeout=RESULT_TIMEOUT) == total
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def test_scattering_more_than_a_worker_holds_in_one_call_spills_instead_of_restarting_it(
        make_cluster, tmp_path):
    cluster, worker, executor = one_small_worker(make_cluster, "300MB", tmp_path)
    held = executor.scatter([block(i, 40 * MB) for i in range(6)])  # 240 MB: some spill
    # 400 MB more in each call: read whole, all of it is in memory at once, beside what the
    # worker holds, which the memory monitor finds past the limit if it looks just then.
    for first in (6, 16, 26):
        futures = executor.scatter([block(i, 40 * MB) for i in range(first, first + 10)])
        results = executor.gather(held + futures, timeout=RESULT_TIMEOUT)
        for values, i in zip(results, [*range(6), *range(first, first + 10)]):
            assert values[0] == i and float(values.sum()) == checksum(i, 40 * MB)
        del futures, results
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def forty_arrays(i):
    """40 MB in a list of arrays: a result the worker knows pickles, so keeps unpickled."""
    import numpy
    return [numpy.random.default_rng(i).random(MB // 8) for _ in range(40)]


def add_a_lock(values):
    import threading
    values.append(threading.Lock())  # the result above, shared in memory, no longer pickles
    return len(values)


def test_a_value_that_no_longer_pickles_stays_in_memory_and_its_fetch_fails_at_once(
        make_cluster, tmp_path, wait_until):
    cluster, worker, executor = one_small_worker(make_cluster, "300MB", tmp_path)
    spoiled = executor.submit(forty_arrays, 0)
    assert executor.submit(add_a_lock, spoiled).result(timeout=RESULT_TIMEOUT) == 41
    more = [executor.submit(block, i, 40 * MB) for i in range(1, 8)]  # past the target
    wait(more, timeout=RESULT_TIMEOUT)
    wait_until(lambda: "cannot be pickled" in worker.output(), 10, "the worker's warning")
    # Kept in memory, where tasks still read it...
    assert executor.submit(len, spoiled).result(timeout=RESULT_TIMEOUT) == 41
    # ...and fetching it says why it cannot come, rather than waiting for it to.
    with pytest.raises(pickle.PicklingError, match="cannot pickle '_thread.lock'"):
        spoiled.result(timeout=RESULT_TIMEOUT / 2)
    assert [values[0] for values in executor.gather(more, timeout=RESULT_TIMEOUT)] == [
        *range(1, 8)]
    assert len(worker.matching("Registered with center at")) == 1


def first_element(values):
    return float(values[0])


def test_spill_files_removed_under_a_worker_are_computed_again_and_spilling_goes_on(
        make_cluster, tmp_path, wait_until):
    """A cleaner of old files in /tmp, or an operator, removes the worker's spill folder:
    what it held there is computed again, and spilling goes on in a folder made anew."""
    import shutil
    cluster, worker, executor = one_small_worker(make_cluster, "300MB", tmp_path)
    futures = [executor.submit(block, i, 30 * MB) for i in range(10)]  # past the 180 MB target
    wait(futures, timeout=RESULT_TIMEOUT)

    def spill_files():
        return list(tmp_path.glob("dist-worker-*/*"))
    wait_until(spill_files, 10, "results to spill")
    [folder] = {path.parent for path in spill_files()}

    def removed():  # the worker may still be writing there, as it may under a real cleaner
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    wait_until(removed, 10, "the spill folder to be removed")
    # Tasks reading what had spilled, a client gathering it, and new results to spill.
    checks = executor.map(first_element, futures)
    assert executor.gather(checks, timeout=RESULT_TIMEOUT) == [float(i) for i in range(10)]
    assert [values[0] for values in executor.gather(futures, timeout=RESULT_TIMEOUT)] == [
        *range(10)]
    more = [executor.submit(block, i, 30 * MB) for i in range(10, 16)]
    assert [values[0] for values in executor.gather(more, timeout=RESULT_TIMEOUT)] == [
        *range(10, 16)]
    wait_until(lambda: folder.exists() and list(folder.iterdir()), 10, "spilling again")
    assert "cannot be read back" in worker.output()
    assert len(worker.matching("Registered with center at")) == 1  # never restarted


def test_a_worker_past_its_spill_limit_keeps_values_says_so_and_pauses(make_cluster, tmp_path,
                                                                       wait_until):
    """Past ``--max-spill``, a value that no longer fits in the room left stays in memory, as
    with dask; the worker then says why it cannot spill and pauses, as its ``--help`` says
    (while its memory is past the target, as with a full disk), and resumes once freed."""
    cluster, tight, executor = beside_a_tight_worker(
        make_cluster, "--memory-limit", "400MB", "--max-spill", "100MB",
        "--local-directory", str(tmp_path), nanny=True)

    def warned():
        wait_until(lambda: "cannot spill to" in tight.output(), 10, "the worker's warning")
        wait_until(lambda: "limit is" in (
            metrics_of(cluster, executor, tight).get("spill_error") or ""), 10,
            "the worker's metrics to say its spill limit is reached")

    # 7 x 50 MB: past the target (240 MB) by two results, which fill the spill space, and a
    # third, each smaller than the limit but larger than the room it leaves.
    fill_and_check(cluster, executor, tight, 7, wait_until, warned)
    wait_until(lambda: cluster.worker_table(executor)[tight.address]["status"] == "running",
               30, "the worker to resume")
