"""The scheduler file: written whole, read with clear errors, removed only by its writer."""
from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from dist_protocol.scheduler_file import (SchedulerFileError, center_identity,
                                          read_scheduler_file, remove_scheduler_file,
                                          wait_for_scheduler_file, wait_for_scheduler_file_async,
                                          write_scheduler_file)

pytestmark = pytest.mark.timeout(30)


def test_written_file_gives_the_address_dashboard_and_a_fresh_id_never_a_token(tmp_path):
    path = str(tmp_path / "sched.json")
    identity = center_identity("10.0.0.5:8786", dashboard_url="http://10.0.0.5:8788/",
                               dashboard_port=8788)
    write_scheduler_file(path, identity)
    read = read_scheduler_file(path)
    assert read["address"] == "10.0.0.5:8786"
    assert read["dashboard"] == "http://10.0.0.5:8788/"
    assert read["services"] == {"dashboard": 8788}
    assert read["type"] == "Center" and read["id"].startswith("center-")
    assert center_identity("a:1")["id"] != read["id"]
    assert "token" not in json.dumps(read).lower()
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o044  # others on the cluster can read it


def test_writing_replaces_the_old_file_whole_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "sched.json")
    write_scheduler_file(path, center_identity("h:1"))
    write_scheduler_file(path, center_identity("h:2"))
    assert read_scheduler_file(path)["address"] == "h:2"
    assert os.listdir(tmp_path) == ["sched.json"]


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    path = str(tmp_path / "sched.json")
    with pytest.raises(TypeError):
        write_scheduler_file(path, {"address": "h:1", "bad": object()})
    assert os.listdir(tmp_path) == []


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_scheduler_file(str(tmp_path / "none.json"))


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"id": "x"}', '{"address": 5}',
                                     '{"address": ""}'])
def test_malformed_file_is_a_clear_error_naming_the_path(tmp_path, content):
    path = tmp_path / "sched.json"
    path.write_text(content)
    with pytest.raises(SchedulerFileError, match=str(path)):
        read_scheduler_file(str(path))


def test_unreadable_file_is_a_clear_error_naming_the_path(tmp_path):
    path = tmp_path / "sched.json"
    path.mkdir()  # a folder where the file should be: cannot be read as one
    with pytest.raises(SchedulerFileError, match="cannot read the scheduler file"):
        read_scheduler_file(str(path))


def test_removed_only_by_the_center_that_wrote_it(tmp_path):
    path = str(tmp_path / "sched.json")
    first = center_identity("h:1")
    write_scheduler_file(path, first)
    second = center_identity("h:2")
    write_scheduler_file(path, second)  # another center took over
    assert not remove_scheduler_file(path, first["id"])
    assert read_scheduler_file(path)["address"] == "h:2"
    assert remove_scheduler_file(path, second["id"])
    assert not os.path.exists(path)
    assert not remove_scheduler_file(path, second["id"])  # already gone: nothing to do


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_waiting_reads_the_file_once_it_appears(tmp_path):
    path = str(tmp_path / "sched.json")
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 5:
            write_scheduler_file(path, center_identity("h:9"))

    assert wait_for_scheduler_file(path, 60, sleep=sleep, clock=clock)["address"] == "h:9"
    assert clock.slept == sorted(clock.slept)  # looks less often as it waits


def test_waiting_gives_up_after_the_timeout_naming_the_path(tmp_path):
    path = str(tmp_path / "sched.json")
    clock = FakeClock()
    with pytest.raises(TimeoutError, match=f"no scheduler file at {path} after 3 s"):
        wait_for_scheduler_file(path, 3, sleep=clock.sleep, clock=clock)
    assert clock.now == pytest.approx(3)


def test_waiting_does_not_wait_out_a_malformed_file(tmp_path):
    path = tmp_path / "sched.json"
    path.write_text("garbage")
    with pytest.raises(SchedulerFileError, match=str(path)):
        wait_for_scheduler_file(str(path), None, sleep=pytest.fail)


def test_waiting_on_an_event_loop(tmp_path):
    path = str(tmp_path / "sched.json")

    async def main() -> str:
        waiting = asyncio.ensure_future(wait_for_scheduler_file_async(path, 30))
        await asyncio.sleep(0)
        assert not waiting.done()
        write_scheduler_file(path, center_identity("h:7"))
        return (await waiting)["address"]

    assert asyncio.run(main()) == "h:7"


def test_waiting_on_an_event_loop_gives_up(tmp_path):
    path = str(tmp_path / "sched.json")
    with pytest.raises(TimeoutError, match="no scheduler file"):
        asyncio.run(wait_for_scheduler_file_async(path, 0.2))


def test_a_path_from_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_scheduler_file("~/sched.json", center_identity("h:3"))
    assert (tmp_path / "sched.json").exists()
    assert read_scheduler_file("~/sched.json")["address"] == "h:3"
