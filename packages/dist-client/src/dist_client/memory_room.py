"""How much more memory this process can take before it is refused some or killed: what a
gather checks before it fetches values that must all be held here at once.

Three limits can stop a process, and only one of them says so with a ``MemoryError``: its
address space (``RLIMIT_AS``, ``ulimit -v``); its control group's memory limit (a container,
a batch job, a notebook server), past which the kernel's OOM killer ends the process with
SIGKILL, no error and no traceback; and the machine's memory itself (again the OOM killer).
Each is read where Linux publishes it (with ``os`` alone: the client imports no more as it
starts); a limit that cannot be read is not counted, so on other systems nothing is ever
refused for want of room.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# cgroup v1 reports "no limit" as a number near 2**63 rounded down to a page.
UNLIMITED_V1 = 2**60


@dataclass(frozen=True)
class Room:
    """``nbytes`` more can be taken, as ``limit`` (in words) allows."""

    nbytes: int
    limit: str


def memory_room(root: str = "/") -> Room | None:
    """The smallest room the process's limits leave it, or ``None`` when none is known.
    ``root`` is where ``/proc`` and ``/sys`` are read from (tests give a folder of their
    own)."""
    rooms = [room for room in (_address_space_room(root), _cgroup_room(root),
                               _machine_room(root)) if room is not None]
    return min(rooms, key=lambda room: room.nbytes) if rooms else None


def _read(*parts: str) -> str | None:
    try:
        with open(os.path.join(*parts)) as f:
            return f.read()
    except (OSError, ValueError):
        return None


def _address_space_room(root: str) -> Room | None:
    try:
        import resource
    except ImportError:  # (not on Windows)
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    statm = _read(root, "proc/self/statm")
    if soft == resource.RLIM_INFINITY or not statm:
        return None
    mapped = int(statm.split()[0]) * resource.getpagesize()
    return Room(max(0, soft - mapped), f"its address space limit (RLIMIT_AS) of "
                f"{soft / 1e6:,.0f} MB")


def _meminfo(root: str) -> dict[str, int]:
    text = _read(root, "proc/meminfo") or ""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return fields


def _machine_room(root: str) -> Room | None:
    fields = _meminfo(root)
    if "MemAvailable" not in fields:
        return None
    return Room(fields["MemAvailable"] + fields.get("SwapFree", 0),
                "the memory this machine has available (MemAvailable and free swap)")


def _stat(folder: str) -> dict[str, int]:
    fields = {}
    for line in (_read(folder, "memory.stat") or "").splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            fields[name] = int(value)
    return fields


def _cgroup_room(root: str) -> Room | None:
    """What the process's memory control group (v2, else v1) leaves: its limit less what it
    uses, counting the page cache it could drop (inactive file pages) as room."""
    groups = _read(root, "proc/self/cgroup") or ""
    for line in groups.splitlines():
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":
            folder = _group_folder(os.path.join(root, "sys/fs/cgroup"), path, "memory.max")
            limit, used = _read(folder, "memory.max"), _read(folder, "memory.current")
            if limit is None or used is None or limit.strip() == "max":
                continue
            inactive = _stat(folder).get("inactive_file", 0)
            return _room_in_group(int(limit), int(used), inactive, "v2")
        if "memory" in controllers.split(","):
            folder = _group_folder(os.path.join(root, "sys/fs/cgroup/memory"), path,
                                   "memory.limit_in_bytes")
            limit, used = (_read(folder, "memory.limit_in_bytes"),
                           _read(folder, "memory.usage_in_bytes"))
            if limit is None or used is None or int(limit) >= UNLIMITED_V1:
                continue
            inactive = _stat(folder).get("total_inactive_file", 0)
            return _room_in_group(int(limit), int(used), inactive, "v1")
    return None


def _group_folder(mount: str, path: str, probe: str) -> str:
    """The group's folder under the hierarchy's ``mount``; in a container without a cgroup
    namespace, ``/proc/self/cgroup`` names the host's path while the container sees its own
    group mounted at the root: then the root."""
    folder = os.path.join(mount, path.strip().lstrip("/"))
    return folder if os.path.exists(os.path.join(folder, probe)) else mount


def _room_in_group(limit: int, used: int, inactive: int, version: str) -> Room:
    return Room(max(0, limit - used + inactive),
                f"its control group's memory limit (cgroup {version}) of "
                f"{limit / 1e6:,.0f} MB, past which the kernel kills it without an error")


def refuse_if_no_room(count: int, nbytes: int, room: Room | None) -> None:
    """Raise ``MemoryError`` when values of ``nbytes`` in all (``count`` of them), to be
    held here at once, do not fit in ``room``."""
    if room is None or nbytes <= room.nbytes:
        return
    raise MemoryError(
        f"gathering {count} values ({nbytes / 1e6:,.0f} MB in all) would take more memory "
        f"than this process can take: about {room.nbytes / 1e6:,.0f} MB more, as "
        f"{room.limit} allows. Nothing was fetched. Gather fewer at a time (with "
        f"as_completed, or in parts), or give this process more memory")


__all__ = ["Room", "memory_room", "refuse_if_no_room"]
