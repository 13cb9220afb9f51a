"""What an executor's repr shows, from what the client knows (no cluster needed)."""
from types import SimpleNamespace

from dist_client.reprs import binary_size, describe, describe_html


def known(*memory_limits):
    workers = [{"name": f"w{i}", "address": f"10.0.0.{i}:1", "nthreads": 2, "keys": 0,
                "metrics": {}, "memory_limit": limit} for i, limit in enumerate(memory_limits)]
    return SimpleNamespace(status="running", address="10.0.0.9:8786", workers_seen=workers,
                           held_count=lambda: 3)


def test_the_repr_adds_up_the_workers_memory_as_dask_shows_it():
    assert describe("Executor", known(2 * 2**30, 2 * 2**30)) == (
        "<Executor: center='10.0.0.9:8786' workers=2 threads=4 futures=3 memory=4.00 GiB>")
    assert "2 workers, 4 threads, 3 futures, 4.00 GiB of memory" in describe_html(
        "Executor", known(2 * 2**30, 2 * 2**30))


def test_no_total_is_shown_when_a_worker_has_no_memory_limit():
    assert "memory" not in describe("Executor", known(2**30, 0))
    assert "memory" not in describe("Executor", known())


def test_sizes_are_written_in_binary_units():
    assert [binary_size(n) for n in (5, 1536, 12 * 2**30, 3 * 2**40)] == [
        "5 B", "1.50 kiB", "12.00 GiB", "3.00 TiB"]
