"""The worker's meter of its own memory and CPU reads what psutil reads, without psutil."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dist_worker.process_meter import ProcStatMeter, physical_memory, process_meter

psutil = pytest.importorskip("psutil")
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux
def test_resident_memory_is_psutils():
    meter, process = ProcStatMeter(), psutil.Process()
    before = meter.rss()
    held = b"x" * (64 * 2**20)  # written: every page resident
    rss, expected = meter.rss(), process.memory_info().rss
    assert abs(rss - expected) < 2**20  # (what the calls allocate between the two reads)
    assert rss - before >= 60 * 2**20
    del held


@linux
def test_cpu_percent_is_the_share_of_a_core_used_since_the_last_call():
    meter, process = ProcStatMeter(), psutil.Process()
    assert meter.cpu_percent() == 0.0  # as psutil: nothing to compare the first call with
    process.cpu_percent()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    ours, theirs = meter.cpu_percent(), process.cpu_percent()
    assert ours > 0 and theirs > 0
    assert abs(ours - theirs) < 20  # the two read their clocks a moment apart


def test_physical_memory_is_psutils_total():
    assert physical_memory() == psutil.virtual_memory().total


def test_a_meter_is_available_here():
    assert process_meter() is not None


@linux
def test_starting_a_worker_imports_no_psutil():
    code = ("import sys, dist_worker.cli as cli; from dist_worker.process_meter import "
            "process_meter; cli.memory_options('auto', 1, {}, None); meter = process_meter(); "
            "meter.rss(); meter.cpu_percent(); print('psutil' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


@linux
def test_a_meter_made_before_a_fork_measures_the_child_in_the_child():
    """The nanny's worker is forked from a preloaded process: ``/proc/self`` kept open in the
    parent names the parent, so the child opens its own."""
    import os

    from dist_worker.process_meter import ProcFile
    status, meter = ProcFile("/proc/self/status"), ProcStatMeter()
    assert f"\nPid:\t{os.getpid()}\n".encode() in status.read()
    meter.rss()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover -- reports through the pipe
        held = b"x" * (64 * 2**20)
        mine = f"\nPid:\t{os.getpid()}\n".encode() in status.read()
        grew = meter.rss() >= 64 * 2**20 and len(held) > 0
        os.write(write, b"ok" if mine and grew else b"no")
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 2) == b"ok"
    assert f"\nPid:\t{os.getpid()}\n".encode() in status.read()


@linux
def test_a_tasks_peak_and_the_size_after_it_come_from_one_read():
    """After each task the worker reads how far the process peaked and how large it is now:
    one read of ``/proc/self/status`` gives both, the size as the meter reads it."""
    import mmap
    import os

    from dist_worker.taskmemory import PeakMeter
    peaks, meter = PeakMeter(), ProcStatMeter()
    assert peaks.available
    peaks.reset()
    # A fresh anonymous mapping, given back when closed: a freed bytes object may stay in
    # the allocator's heap (after earlier tests, glibc serves 64 MB from it), size unchanged.
    block = mmap.mmap(-1, 64 * 2**20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    block.close()
    reads = []
    original = os.pread

    def counted(*args):
        reads.append(args)
        return original(*args)

    os.pread = counted
    try:
        peak, size = peaks.peak_and_size()
    finally:
        os.pread = original
    assert len(reads) == 1
    assert peak is not None and size is not None
    assert peak >= size + 60 * 2**20  # the peak outlives the memory freed
    assert abs(size - meter.rss()) < 2**20
