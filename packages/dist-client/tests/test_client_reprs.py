"""What an executor's repr shows, from what the client knows (no cluster needed)."""
from types import SimpleNamespace

from dist_client.reprs import HTML_WORKERS_SHOWN, binary_size, describe, describe_html


def known(*memory_limits):
    workers = [{"name": f"w{i}", "address": f"10.0.0.{i}:1", "nthreads": 2, "keys": 0,
                "metrics": {}, "memory_limit": limit} for i, limit in enumerate(memory_limits)]
    return SimpleNamespace(status="running", address="10.0.0.9:8786", workers_seen=workers,
                           held_count=lambda: 3)


def test_the_repr_adds_up_the_workers_memory_as_dask_shows_it():
    assert describe("Executor", known(2 * 2**30, 2 * 2**30)) == (
        "<Executor: '10.0.0.9:8786' workers=2 threads=4 memory=4.00 GiB futures=3>")
    html = describe_html("Executor", known(2 * 2**30, 2 * 2**30))
    assert "<strong>Total threads: </strong>4" in html
    assert "<strong>Total memory: </strong>4.00 GiB" in html


def test_the_repr_of_six_workers_fits_in_eighty_characters_as_dask_keeps_it():
    many = known(*[2 * 2**30] * 6)
    many.address = "127.0.0.1:45678"  # (dist writes tcp addresses bare)
    assert len(describe("Executor", many)) < 80


def test_the_html_lists_a_few_workers_and_says_how_many_are_left_out():
    html = describe_html("Executor", known(*[2**30] * 25))
    assert html.count("<tr><td>") == HTML_WORKERS_SHOWN
    assert f"and {25 - HTML_WORKERS_SHOWN} more workers" in html
    assert "<strong>Total memory: </strong>25.00 GiB" in html


def test_a_closed_executor_says_no_scheduler_is_connected_as_dask_s_does():
    closed = known()
    closed.status = "closed"
    assert describe("Executor", closed) == (
        "<Executor: No scheduler connected (closed; center 10.0.0.9:8786)>")
    assert "No scheduler connected" in describe_html("Executor", closed)


def test_no_total_is_shown_when_a_worker_has_no_memory_limit():
    assert "memory" not in describe("Executor", known(2**30, 0))
    assert "memory" not in describe("Executor", known())


def test_sizes_are_written_in_binary_units():
    assert [binary_size(n) for n in (5, 1536, 12 * 2**30, 3 * 2**40)] == [
        "5 B", "1.50 kiB", "12.00 GiB", "3.00 TiB"]
