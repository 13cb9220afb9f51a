"""Large values written to disk off the event loop: what the store holds, serves and forgets
from the moment a write begins until its outcome is recorded. The writer here runs each
write and its outcome only when the test says so, as the writer's thread and the loop
would, in between."""
from __future__ import annotations

import errno
import os
import shutil

import pytest
from dist_worker.spill import WriteAbandoned, file_name
from dist_worker.spillwriter import SpillWriter
from dist_worker.store import OFF_LOOP_FROM, DataStore

pytestmark = pytest.mark.timeout(30)

MB = 2**20
LARGE = OFF_LOOP_FROM + MB


class StepWriter:
    """Writes only when told: ``write_next`` runs a write (as the writer's thread does),
    ``report_next`` records its outcome (as the loop does once the write has ended)."""

    def __init__(self) -> None:
        self.submitted: list = []
        self.ended: list = []
        self.closed = False

    def submit(self, write, done) -> None:
        self.submitted.append((write, done))

    def write_next(self) -> None:
        write, done = self.submitted.pop(0)
        try:
            write()
            self.ended.append((done, None))
        except Exception as exc:  # noqa: BLE001 -- reported with the outcome, as the thread does
            self.ended.append((done, exc))

    def report_next(self) -> None:
        done, error = self.ended.pop(0)
        done(error)

    def close(self) -> None:
        self.closed = True


def large(fill: bytes) -> bytes:
    return fill * LARGE


def files(store: DataStore) -> list[str]:
    return sorted(os.listdir(store.directory)) if os.path.isdir(store.directory) else []


@pytest.fixture
def writer():
    return StepWriter()


@pytest.fixture
def store(tmp_path, writer):
    made = DataStore(target=LARGE // 2, directory=str(tmp_path), writer=writer)
    yield made
    made.close()


def test_a_large_value_past_the_target_is_served_from_memory_while_it_is_written(store, writer):
    value = large(b"a")
    store["x"] = value
    assert len(writer.submitted) == 1  # begun, not written
    assert store.in_memory("x") and not store.on_disk("x") and "x" in store
    assert store["x"] is value  # the object itself, not read back
    assert store.managed >= LARGE and store.writing >= LARGE and store.spillable == 0
    assert store.dropping  # (its memory is on its way out)
    assert list(store) == ["x"] and len(store) == 1
    writer.write_next()
    assert store.in_memory("x")  # (written, but recorded only on the loop)
    writer.report_next()
    assert store.on_disk("x") and not store.in_memory("x")
    assert store.writing == 0 and store.spilled_count == 1
    assert store.slow.reserved == 0 and not any(f.endswith(".part") for f in files(store))
    assert store["x"] == value  # read back from its file


def test_a_small_value_is_still_written_at_once(store, writer):
    store["big"] = large(b"a")  # (past the target: being written)
    store["small"] = b"s" * (OFF_LOOP_FROM // 2)
    store.evict()
    assert store.on_disk("small") and len(writer.submitted) == 1


def test_large_values_are_written_on_the_thread_one_at_a_time(store, writer):
    """While one is written (and still in memory), the next is written at once, holding the
    loop as before: values arriving meanwhile would otherwise pile up in memory beside
    those being written."""
    store["x"] = large(b"a")
    store["y"] = large(b"b")
    assert len(writer.submitted) == 1 and store.in_memory("x") and store.on_disk("y")
    writer.write_next()
    writer.report_next()
    store["z"] = large(b"c")
    assert len(writer.submitted) == 1 and store.in_memory("z") and not store.on_disk("z")


def test_a_value_freed_while_it_is_written_leaves_no_file(store, writer):
    store["x"] = large(b"a")
    del store["x"]
    assert "x" not in store and store.managed == 0 and store.writing == 0
    writer.write_next()
    assert isinstance(writer.ended[0][1], WriteAbandoned)  # (stopped at its next step)
    writer.report_next()
    assert "x" not in store and files(store) == [] and store.slow.reserved == 0


def test_a_value_freed_after_its_file_is_whole_leaves_no_file(store, writer):
    store["x"] = large(b"a")
    writer.write_next()  # the file is whole; the loop has not heard yet
    del store["x"]
    writer.report_next()
    assert "x" not in store and files(store) == [] and store.slow.reserved == 0


def test_a_value_replaced_while_it_is_written_is_the_new_one(store, writer):
    store["x"] = large(b"a")
    store["x"] = large(b"b")  # the first write is abandoned; the new value spills too
    assert len(writer.submitted) == 2
    assert store["x"] == large(b"b")
    writer.write_next()
    writer.write_next()
    writer.report_next()  # the first write's outcome: forgotten
    assert store.in_memory("x") and store["x"] == large(b"b")
    writer.report_next()
    assert store.on_disk("x") and store["x"] == large(b"b")
    assert not any(f.endswith(".part") for f in files(store))


def test_a_write_that_fails_puts_the_value_back_in_memory(store, writer, monkeypatch):
    value = large(b"a")
    store["x"] = value

    def failing_disk(path):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr("dist_worker.spill._create", failing_disk)
    writer.write_next()
    writer.report_next()
    assert store.in_memory("x") and store["x"] is value and not store.on_disk("x")
    assert store.spill_suspended and store.writing == 0 and store.spillable >= LARGE
    assert store.slow.reserved == 0 and files(store) == []


def test_a_spill_folder_removed_before_a_large_write_runs_is_made_again(store, writer):
    value = large(b"a")
    store["x"] = value
    shutil.rmtree(store.directory)  # (as a cleaner of old files in /tmp does)
    writer.write_next()
    writer.report_next()
    assert store.on_disk("x") and not store.spill_suspended and store["x"] == value
    assert not any(f.endswith(".part") for f in files(store))


def test_a_spill_folder_removed_while_a_large_value_is_written_is_made_again(store, writer):
    """Removed with the file being written in it: the file cannot be renamed into place. The
    value stays in memory meanwhile and is written again to the folder made anew; spilling
    is not suspended, as it is not when the folder is removed before a write on the loop."""
    value = large(b"a")
    store["x"] = value
    writer.write_next()  # the file is whole, under its staged name
    shutil.rmtree(store.directory)
    writer.report_next()
    assert store.in_memory("x") and not store.spill_suspended
    assert len(writer.submitted) == 1 and store.writing >= LARGE  # written again
    writer.write_next()
    writer.report_next()
    assert store.on_disk("x") and not store.spill_suspended and store["x"] == value
    assert store.slow.reserved == 0 and store.spilled_count == 1
    assert not any(f.endswith(".part") for f in files(store))


def test_closing_abandons_the_write_under_way(tmp_path, writer):
    store = DataStore(target=LARGE // 2, directory=str(tmp_path), writer=writer)
    store["x"] = large(b"a")
    write, _ = writer.submitted[0]
    store.close()
    assert writer.closed
    with pytest.raises(WriteAbandoned):
        write()
    assert not os.path.exists(store.directory)


def test_the_writer_reports_each_write_on_the_loop_in_order():
    import asyncio
    import threading

    async def main() -> list:
        outcomes: list = []
        writer = SpillWriter()
        loop_thread = threading.get_ident()
        every = asyncio.Event()

        def done(name: str):
            def report(error) -> None:
                outcomes.append((name, type(error).__name__ if error else None,
                                 threading.get_ident() == loop_thread))
                if len(outcomes) == 3:
                    every.set()
            return report

        def fails() -> None:
            raise OSError("no room")

        writer.submit(lambda: None, done("first"))
        writer.submit(fails, done("second"))
        writer.submit(lambda: None, done("third"))
        await asyncio.wait_for(every.wait(), 10)
        writer.close()
        return outcomes

    assert asyncio.run(main()) == [("first", None, True), ("second", "OSError", True),
                                   ("third", None, True)]


@pytest.mark.parametrize("freed", [True, False])
def test_a_value_written_or_abandoned_on_the_thread_is_not_held_after(tmp_path, freed):
    """Nothing of the write keeps the value alive once it ended: an abandoned write's
    exception carried the frames of the write, the value's with them, until the cyclic
    collector (which a worker runs seldom) found them."""
    import asyncio
    import gc
    import weakref

    import numpy

    async def main() -> weakref.ref:
        store = DataStore(target=LARGE // 2, directory=str(tmp_path), writer=SpillWriter())
        value = numpy.ones(LARGE // 8)
        alive = weakref.ref(value)
        store["x"] = value
        del value
        if freed:
            del store["x"]
        while store.slow.reserved:  # (until the write's end is recorded)
            await asyncio.sleep(0.01)
        while store.dropping:
            store.hand_off_dropped()
            await asyncio.sleep(0.01)
        store.close()
        return alive

    gc.disable()
    try:
        alive = asyncio.run(main())
        assert alive() is None
    finally:
        gc.enable()


def test_room_made_for_a_value_read_back_is_made_at_once(store, writer):
    """Reading a spilled value back spills others first, so that the process never holds
    the whole target and the value at once; written on the thread, those others would still
    be in memory as the value came back."""
    store["x"] = large(b"a")
    writer.write_next()
    writer.report_next()  # x on disk
    store.target = LARGE + LARGE // 2
    store["y"] = large(b"b")  # (under the target: stays in memory)
    assert store.in_memory("y") and not writer.submitted
    assert store["x"] == large(b"a")
    assert store.on_disk("y") and not writer.submitted  # written before x came back


def test_room_made_for_a_read_on_a_thread_is_written_on_the_thread_before_the_read(store,
                                                                                    writer):
    """A task's large input read back on a thread (``make_room_for``, then ``read_value``):
    the values making room for it are written on the writer's thread, small ones too, and
    the read is told to begin only once they have left memory."""
    store["x"] = large(b"a")
    writer.write_next()
    writer.report_next()  # x on disk
    store.target = LARGE + LARGE // 2
    store["y"] = b"b" * (40 * MB)  # (under OFF_LOOP_FROM: spilled at once, it took the loop)
    store["z"] = b"c" * MB
    made = []
    store.make_room_for("x", lambda: made.append("x"))
    assert [write for write, _ in writer.submitted] and not made
    assert store.in_memory("y") and store["y"] == b"b" * (40 * MB)  # served while written
    assert store.in_memory("z")  # (room enough without it)
    writer.write_next()
    assert not made  # written, not yet recorded on the loop
    writer.report_next()
    assert made == ["x"] and store.on_disk("y")
    value, size = store.read_value("x")
    assert store.restore("x", value, size) == large(b"a") and store.in_memory("x")


def test_room_already_there_for_a_read_on_a_thread_is_told_at_once(store, writer):
    store["x"] = large(b"a")
    writer.write_next()
    writer.report_next()
    store.target = 2 * LARGE
    store["y"] = b"b" * MB
    made = []
    store.make_room_for("x", lambda: made.append("x"))
    assert made == ["x"] and not writer.submitted and store.in_memory("y")


def test_room_made_for_a_read_is_told_when_a_value_leaving_is_freed(store, writer):
    store["x"] = large(b"a")
    writer.write_next()
    writer.report_next()
    store.target = LARGE + LARGE // 2
    store["y"] = b"b" * (40 * MB)
    made = []
    store.make_room_for("x", lambda: made.append("x"))
    del store["y"]  # freed while its write runs: abandoned
    writer.write_next()
    writer.report_next()
    assert made == ["x"] and "y" not in store and files(store) == [file_name("x")]
