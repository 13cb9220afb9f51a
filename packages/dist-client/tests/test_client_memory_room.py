"""The room a gather checks for (``memory_room``), read from a ``/proc`` and ``/sys`` of the
test's own making: each limit alone, the smallest of several, and none at all."""
from __future__ import annotations

import resource

import pytest

from dist_client.memory_room import Room, memory_room, refuse_if_no_room

MB = 10**6


def write(root, path, text):
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@pytest.fixture(autouse=True)
def no_address_space_limit(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def meminfo(root, available_kb, swap_free_kb=0):
    write(root, "proc/meminfo", f"MemTotal:       99999999 kB\nMemFree:        1 kB\n"
          f"MemAvailable:   {available_kb} kB\nSwapFree:       {swap_free_kb} kB\n")


def test_the_machine_available_memory_and_free_swap(tmp_path):
    meminfo(tmp_path, 2_000_000, 500_000)
    write(tmp_path, "proc/self/cgroup", "0::/\n")
    room = memory_room(str(tmp_path))
    assert room is not None and room.nbytes == 2_500_000 * 1024
    assert "MemAvailable" in room.limit


def test_a_cgroup_v2_limit_counts_its_inactive_page_cache_as_room(tmp_path):
    meminfo(tmp_path, 20_000_000)
    write(tmp_path, "proc/self/cgroup", "0::/user.slice/job-7\n")
    group = "sys/fs/cgroup/user.slice/job-7"
    write(tmp_path, f"{group}/memory.max", f"{1000 * MB}\n")
    write(tmp_path, f"{group}/memory.current", f"{900 * MB}\n")
    write(tmp_path, f"{group}/memory.stat", f"anon 1\ninactive_file {50 * MB}\nactive_file 9\n")
    room = memory_room(str(tmp_path))
    assert room == Room(150 * MB, "its control group's memory limit (cgroup v2) of 1,000 MB, "
                        "past which the kernel kills it without an error")


def test_a_cgroup_v2_without_a_limit_is_not_counted(tmp_path):
    meminfo(tmp_path, 1_000)
    write(tmp_path, "proc/self/cgroup", "0::/free\n")
    write(tmp_path, "sys/fs/cgroup/free/memory.max", "max\n")
    write(tmp_path, "sys/fs/cgroup/free/memory.current", "5\n")
    assert memory_room(str(tmp_path)).nbytes == 1_000 * 1024


def test_a_cgroup_v1_limit(tmp_path):
    meminfo(tmp_path, 20_000_000)
    write(tmp_path, "proc/self/cgroup", "5:cpu,cpuacct:/\n4:memory:/docker/abc\n0::/\n")
    group = "sys/fs/cgroup/memory/docker/abc"
    write(tmp_path, f"{group}/memory.limit_in_bytes", f"{512 * MB}\n")
    write(tmp_path, f"{group}/memory.usage_in_bytes", f"{500 * MB}\n")
    write(tmp_path, f"{group}/memory.stat", f"cache 9\ntotal_inactive_file {8 * MB}\n")
    room = memory_room(str(tmp_path))
    assert room.nbytes == 20 * MB and "cgroup v1" in room.limit


def test_a_cgroup_v1_without_a_limit_is_not_counted(tmp_path):
    meminfo(tmp_path, 3)
    write(tmp_path, "proc/self/cgroup", "4:memory:/\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", f"{2**63 - 4096}\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.usage_in_bytes", "7\n")
    assert memory_room(str(tmp_path)).nbytes == 3 * 1024


def test_the_address_space_limit_when_it_is_the_smallest(tmp_path, monkeypatch):
    meminfo(tmp_path, 20_000_000)
    write(tmp_path, "proc/self/statm", "1000 10 10 1 0 10 0\n")
    page = resource.getpagesize()
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1000 * page + 70 * MB, -1))
    room = memory_room(str(tmp_path))
    assert room.nbytes == 70 * MB and "RLIMIT_AS" in room.limit


def test_nothing_readable_means_no_room_known_and_nothing_refused(tmp_path):
    assert memory_room(str(tmp_path)) is None
    refuse_if_no_room(10, 10**12, None)


def test_a_gather_past_the_room_is_refused_saying_what_to_do():
    refuse_if_no_room(2, 100 * MB, Room(100 * MB, "x"))  # (it fits exactly)
    with pytest.raises(MemoryError, match=r"gathering 3 values \(300 MB in all\) would take "
                       r"more memory than this process can take: about 100 MB more, as the "
                       r"limit allows\. Nothing was fetched\. Gather fewer at a time"):
        refuse_if_no_room(3, 300 * MB, Room(100 * MB, "the limit"))


def test_a_container_sees_its_own_group_at_the_root_of_the_hierarchy(tmp_path):
    meminfo(tmp_path, 20_000_000)
    write(tmp_path, "proc/self/cgroup", "4:memory:/kubepods/pod-1/abc\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", f"{256 * MB}\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.usage_in_bytes", f"{56 * MB}\n")
    assert memory_room(str(tmp_path)).nbytes == 200 * MB
