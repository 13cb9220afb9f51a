"""A gather larger than the client can hold fails at once with a MemoryError that says what to
do, and the client goes on; it is not fetched again and again until the gather gives up."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numpy")
resource = pytest.importorskip("resource")

# The client, in a process of its own: once connected, it may map at most 300 MB more, then
# gathers ten results of 50 MB; then, with that room, three of them.
CLIENT = textwrap.dedent("""
    import resource, sys
    from dist_client import Executor

    def block(i):
        import numpy
        return numpy.full(50 * 10**6 // 8, float(i))

    executor = Executor(sys.argv[1])
    futures = executor.map(block, range(10))
    executor.gather(futures[:1], timeout=60)  # every module a gather needs is imported
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + 300 * 10**6, resource.RLIM_INFINITY))
    try:
        executor.gather(futures, timeout=60)
        print("gathered all")
    except MemoryError as exc:
        print(f"MemoryError: {exc}")
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
    print("then", [float(v[0]) for v in executor.gather(futures[7:10], timeout=60)])
    executor.close()
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_gather_larger_than_the_client_can_hold_is_a_memory_error_at_once(make_cluster):
    cluster = make_cluster(n_workers=2)
    run = subprocess.run([sys.executable, "-c", CLIENT, cluster.address], capture_output=True,
                         text=True, timeout=150)
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    # Before, each failed fetch was tried again until the gather's timeout (60 s here, its
    # patience 120 s): a TimeoutError, or a LostDataError that blamed the workers.
    assert lines[0].startswith("MemoryError: gathering 10 values (500 MB in all)"), run.stdout
    assert "Gather fewer at a time" in lines[0]
    assert lines[1] == "then [7.0, 8.0, 9.0]"


# The same client against a worker that has spilled the results: refused before any request,
# the worker reads none of them back to send them.
SPILLED_CLIENT = textwrap.dedent("""
    import resource, sys, time
    from dist_client import Executor

    def block(i):
        import numpy
        return numpy.random.default_rng(i).random(50 * 10**6 // 8)

    executor = Executor(sys.argv[1])
    futures = executor.map(block, range(10))
    executor.gather(futures[:1], timeout=60)
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + 300 * 10**6, resource.RLIM_INFINITY))
    rows = executor.core.run(executor.core.refresh_workers())
    read_before = sum(row["metrics"].get("spill_read", 0) for row in rows)
    try:
        executor.gather(futures, timeout=60)
        print("gathered all")
    except MemoryError as exc:
        print(f"MemoryError: {exc}")
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
    time.sleep(1.5)  # (the worker's next heartbeats carry what it read back meanwhile)
    rows = executor.core.run(executor.core.refresh_workers())
    print("read back", sum(row["metrics"].get("spill_read", 0) for row in rows) - read_before)
    executor.close()
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.timeout(120)
def test_a_gather_larger_than_the_client_can_hold_fetches_nothing(make_cluster):
    cluster = make_cluster(n_workers=0)
    worker = cluster.processes.start_worker(cluster.address, "--memory-limit", "300MB",
                                            name="spilling")
    cluster.workers.append(worker)
    run = subprocess.run([sys.executable, "-c", SPILLED_CLIENT, cluster.address],
                         capture_output=True, text=True, timeout=100)
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    # Before, the client asked for them all, and the worker read its spilled results back to
    # send them until the client found no room for a frame.
    assert lines[0].startswith("MemoryError: gathering 10 values (500 MB in all) would take "
                               "more memory than this process can take"), run.stdout
    assert "RLIMIT_AS" in lines[0] and "Nothing was fetched" in lines[0]
    assert lines[1] == "read back 0", run.stdout
