"""Memory: reading limits and fractions, size estimates, and the spilling store."""
from __future__ import annotations

import errno
import gc
import logging
import os
import threading
import weakref

import pytest
from dist_protocol.serialize import deserialize
from dist_worker.memory import (MIN_MEMORY_LIMIT, MemoryPolicy, parse_bytes, parse_fraction,
                                parse_memory_limit)
from dist_worker.sizeof import sizeof
from dist_worker.spill import STREAM_FROM, DiskMapping, SpillReadError, compress, file_name
from dist_worker.store import DataStore

MB = 10**6
MACHINE = 16 * 10**9


# -- --memory-limit and the fractions ---------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("300000000", 300 * MB), ("1.5 g", 1.5e9),
    ("0.5", MACHINE // 2), ("1", MACHINE), ("0", 0), ("none", 0), (None, 0), ("off", 0),
    ("64GB", MACHINE),  # more than the machine has: the machine's memory
])
def test_memory_limits_are_bytes_fractions_of_the_machine_or_nothing(text, expected):
    assert parse_memory_limit(text, nthreads=1, total=MACHINE) == expected


def test_auto_shares_the_machine_out_by_threads():
    cores = os.cpu_count() or 1
    assert parse_memory_limit("auto", nthreads=cores, total=MACHINE) == MACHINE
    assert parse_memory_limit("AUTO", nthreads=1, total=MACHINE) == MACHINE // cores


@pytest.mark.parametrize("text, message", [
    ("100", "below the minimum"), ("-1", "negative"), ("50MB", "below the minimum"),
    ("abc", "cannot read 'abc' as a size"), ("4XB", "cannot read"), ("nan", "cannot read"),
    ("0.001", "below the minimum"),
])
def test_limits_that_cannot_work_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_memory_limit(text, nthreads=1, total=MACHINE)


def test_the_minimum_limit_is_above_an_idle_worker():
    assert MIN_MEMORY_LIMIT >= 100 * MB
    assert parse_memory_limit(str(MIN_MEMORY_LIMIT), 1, total=MACHINE) == MIN_MEMORY_LIMIT


def test_the_machine_memory_is_no_more_than_physical_memory():
    import psutil
    from dist_worker.memory import system_memory
    assert 0 < system_memory() <= psutil.virtual_memory().total


@pytest.mark.parametrize("text, expected", [
    ("0.7", 0.7), ("off", None), ("False", None), ("0", None), (0.5, 0.5), (None, None)])
def test_fractions_read_as_numbers_or_off(text, expected):
    assert parse_fraction(text, "spill") == expected


@pytest.mark.parametrize("text", ["-0.1", "2", "abc", "nan"])
def test_bad_fractions_are_refused(text):
    with pytest.raises(ValueError, match="spill fraction"):
        parse_fraction(text, "spill")


def test_a_policy_turns_fractions_into_bytes_and_off_stays_off():
    policy = MemoryPolicy(limit=1000 * MB, spill=None)
    assert policy.bytes_at("target") == 600 * MB
    assert policy.bytes_at("spill") is None
    assert MemoryPolicy().bytes_at("pause") is None  # no limit: no thresholds
    assert "spill off" in policy.describe()


def test_sizes_with_units():
    assert parse_bytes("2kib") == 2048
    with pytest.raises(ValueError, match="as a size"):
        parse_bytes("")


# -- sizeof ----------------------------------------------------------------------------------
def test_sizes_of_buffers_containers_and_arrays():
    numpy = pytest.importorskip("numpy")
    assert 10 * MB <= sizeof(b"x" * 10 * MB) < 10 * MB + 1000
    assert sizeof(numpy.zeros(10**6)) >= 8 * MB
    big_list = [b"x" * 1000] * 1000
    assert 1000 * 1000 <= sizeof(big_list) < 1.2 * 1000 * 1000 + 10**5
    assert sizeof({"a": numpy.zeros(1000)}) >= 8000
    assert sizeof((numpy.zeros(100), numpy.zeros(100))) >= 1600
    assert sizeof(numpy.broadcast_to(numpy.zeros(1), (10**6,))) < 1000


def test_sizes_of_pandas_objects_count_their_strings():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"x": range(100_000), "s": [f"some text {i}"
                                                         for i in range(100_000)]})
    exact = frame.memory_usage(deep=True).sum()  # slow (every string), hence the sampling
    assert 0.9 * exact <= sizeof(frame) <= 1.1 * exact
    as_objects = frame.astype({"s": object})
    exact = as_objects.memory_usage(deep=True).sum()
    assert 0.9 * exact <= sizeof(as_objects) <= 1.1 * exact
    as_python_strings = frame.astype({"s": pandas.StringDtype("python")})
    exact = as_python_strings.memory_usage(deep=True).sum()
    assert 0.9 * exact <= sizeof(as_python_strings) <= 1.1 * exact
    assert sizeof(frame["x"]) >= 800_000
    assert sizeof(frame.index) < 1000  # a range index is a few numbers
    shuffled = frame.assign(x=frame["x"].sample(frac=1, random_state=0).to_numpy())
    assert sizeof(shuffled.set_index("x")) >= 800_000 + sizeof(frame["s"])  # an index of ints


class DeepDict(dict):
    def __sizeof__(self):
        raise AssertionError("sized item by item already: its own deep size is not asked")


def test_a_container_subclass_is_sized_by_its_items_once():
    numpy = pytest.importorskip("numpy")
    value = DeepDict(a=numpy.zeros(1000))
    assert 8000 <= sizeof(value) < 9000


class Weird:
    def __sizeof__(self):
        raise RuntimeError("no size for you")


def test_unknown_types_count_their_pickle_and_a_failing_estimate_never_raises(caplog):
    assert sizeof(Weird(), pickled=12345) == 12345
    assert sizeof(threading.Lock(), pickled=None) > 0  # unpicklable: its own size


def test_a_proxy_whose_object_is_gone_is_sized_without_raising():
    # dask's test_use_of_weakref_proxy: a task returned such a proxy, and the worker's
    # callback storing it raised (isinstance asks the dead object), so the task never ended.
    class Held:
        pass

    held = Held()
    proxy = weakref.proxy(held)
    del held
    gc.collect()
    with pytest.raises(ReferenceError):
        isinstance(proxy, dict)
    assert sizeof(proxy, pickled=100) == 100
    assert sizeof(proxy) >= 0


# -- the disk mapping --------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["lz4", "zstd", "none"])
def test_values_go_to_disk_and_come_back_equal(tmp_path, codec):
    numpy = pytest.importorskip("numpy")
    disk = DiskMapping(str(tmp_path / "spill"), codec=codec)
    value = {"array": numpy.arange(10**6), "text": "hello"}
    disk["k"] = value
    back = disk["k"]
    assert back["text"] == "hello" and (back["array"] == value["array"]).all()
    back["array"][0] = 7  # arrays read back are writable, as the originals were
    assert (disk.sizes["k"] < 8 * MB) == (codec != "none")  # arange compresses
    del disk["k"]  # moved back to memory: the file stays as a cache
    assert "k" not in disk and disk.disk_bytes > 0
    disk["k"] = value  # evicted again: no second write
    assert disk.bytes_written == disk.sizes["k"]
    disk.forget("k")
    assert disk.disk_bytes == 0 and os.listdir(tmp_path / "spill") == []


@pytest.mark.parametrize("codec", ["lz4", "none"])
def test_arrays_read_back_are_aligned_and_sum_as_before_they_spilled(tmp_path, codec):
    numpy = pytest.importorskip("numpy")
    disk = DiskMapping(str(tmp_path / "spill"), codec=codec)
    floats = numpy.random.default_rng(0).random(10**6)  # incompressible: a raw frame
    disk["k"] = {"name": "a key long enough to shift what follows", "floats": floats,
                 "ints": numpy.arange(10**6)}  # compressible, for lz4
    back = disk["k"]
    for name in ("floats", "ints"):
        assert back[name].flags.aligned and back[name].ctypes.data % 16 == 0
    assert back["floats"].sum() == floats.sum()  # to the last bit


@pytest.mark.parametrize("codec", ["lz4", "none"])
def test_a_large_bytes_value_is_written_as_it_is_and_read_back_into_one_bytes(tmp_path, codec):
    """Its file holds the value's own bytes (compressible or not: decompressed, it would come
    back as a buffer copied once more into the value), and it is read straight into the bytes
    object it comes back as."""
    disk = DiskMapping(str(tmp_path / "spill"), codec=codec)
    data = b"\x01" * (4 * MB)
    disk["k"] = data
    assert disk.sizes["k"] > 4 * MB  # not compressed
    back = disk["k"]
    assert type(back) is bytes and back == data
    payload = disk.read("k")  # as it is served to a peer: a pickle, the data out of band
    assert payload.serializer == "pickle" and type(payload.frames[1]) is bytes
    assert deserialize(payload) is payload.frames[1]


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_a_large_frame_is_compressed_as_it_is_written_and_read_back_in_steps(tmp_path, codec):
    numpy = pytest.importorskip("numpy")
    disk = DiskMapping(str(tmp_path / "spill"), codec=codec)
    value = numpy.random.default_rng(2).integers(0, 50, 3 * 10**6).astype(numpy.float64)
    assert value.nbytes >= STREAM_FROM + 3 * 2**20  # several steps, the last one short
    disk["k"] = value
    assert disk.sizes["k"] < value.nbytes / 2
    assert disk.sizes["k"] == os.path.getsize(os.path.join(disk.directory, file_name("k")))
    back = disk["k"]
    assert (back == value).all() and back.flags.writeable and back.flags.aligned
    assert deserialize(disk.read("k")).sum() == value.sum()


def test_a_damaged_lz4_frame_in_a_spill_file_is_a_clear_error(tmp_path):
    numpy = pytest.importorskip("numpy")
    disk = DiskMapping(str(tmp_path / "spill"), codec="lz4")
    disk["k"] = numpy.zeros(STREAM_FROM // 8 + 1000)
    path = os.path.join(disk.directory, file_name("k"))
    with open(path, "rb") as f:
        content = f.read()
    with open(path, "r+b") as f:
        f.seek(content.index(b"\x04\x22\x4d\x18"))  # the lz4 frame's magic number
        f.write(b"\xff" * 4)
    with pytest.raises(SpillReadError, match="damaged"):
        disk["k"]


def test_a_truncated_or_padded_spill_file_is_a_clear_error(tmp_path):
    numpy = pytest.importorskip("numpy")
    disk = DiskMapping(str(tmp_path / "spill"), codec="none")
    path = os.path.join(disk.directory, file_name("k"))
    for change in (lambda f: f.truncate(os.path.getsize(path) - 1),
                   lambda f: (f.seek(0, os.SEEK_END), f.write(b"x")),
                   lambda f: f.truncate(3)):
        disk["k"] = numpy.random.default_rng(0).random(1000)
        with open(path, "r+b") as f:
            change(f)
        with pytest.raises(OSError, match="truncated|damaged"):
            disk["k"]
        disk.forget("k")


def test_a_spill_folder_removed_is_made_again_and_what_it_held_is_a_clear_loss(tmp_path):
    import shutil
    from dist_worker.spill import SpillReadError
    disk = DiskMapping(str(tmp_path / "spill"))
    disk["old"] = b"x" * 1000
    shutil.rmtree(tmp_path / "spill")
    disk["new"] = b"y" * 1000
    assert disk["new"] == b"y" * 1000
    with pytest.raises(SpillReadError, match="the spilled value of old cannot be read back"):
        disk["old"]


def test_incompressible_frames_are_written_as_they_are():
    packed, frame = compress(os.urandom(100_000))
    assert not packed
    packed, frame = compress(b"a" * 100_000)
    assert packed and len(frame) < 1000
    assert compress(os.urandom(100_000), "zstd")[0] == 0


def test_zstd_spill_files_are_smaller_than_lz4_on_integer_columns(tmp_path):
    numpy = pytest.importorskip("numpy")
    keys = numpy.random.default_rng(0).integers(0, 10_000, 500_000)  # as a groupby key
    sizes = {}
    for codec in ("lz4", "zstd"):
        disk = DiskMapping(str(tmp_path / codec), codec=codec)
        disk["k"] = keys
        assert (disk["k"] == keys).all()
        sizes[codec] = disk.sizes["k"]
    assert sizes["zstd"] < 0.8 * sizes["lz4"] < 0.8 * keys.nbytes


def test_an_unknown_spill_codec_or_a_damaged_zstd_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="choose one of lz4, zstd, none"):
        DiskMapping(str(tmp_path), codec="gzip")
    disk = DiskMapping(str(tmp_path / "spill"), codec="zstd")
    disk["k"] = b"abc" * 100_000
    path = os.path.join(disk.directory, file_name("k"))
    with open(path, "r+b") as f:
        f.seek(-20, os.SEEK_END)
        f.write(b"\xff" * 20)
    with pytest.raises(OSError, match="damaged"):
        disk["k"]


def test_a_disk_limit_or_a_value_larger_than_it_raises_a_clear_oserror(tmp_path):
    disk = DiskMapping(str(tmp_path), max_bytes=3 * MB)
    disk["a"] = os.urandom(2 * MB)
    with pytest.raises(OSError, match="limit"):
        disk["b"] = os.urandom(2 * MB)
    with pytest.raises(OSError, match="needs") as info:
        disk["c"] = os.urandom(4 * MB)
    assert info.value.errno == errno.ENOSPC
    assert list(disk) == ["a"] and len(os.listdir(tmp_path)) == 1


# -- the store ---------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    made = DataStore(target=25 * MB, directory=str(tmp_path))
    yield made
    made.close()


def value(n_mb: int, fill: int = 0):
    return bytes([fill]) * (n_mb * MB)


def test_a_value_spilled_as_it_was_stored_is_read_by_the_same_batch_from_memory(store):
    """Its storer (the event of a task's result) holds it until the batch of events ends, so
    a task of that batch reading it gets the object itself; read back from the file, the
    value would be in memory twice. After the batch, it comes from disk again."""
    numpy = pytest.importorskip("numpy")
    large = numpy.random.default_rng(1).random(30 * MB // 8)  # heavier than the target
    store["big"] = large
    assert store.on_disk("big")
    assert store["big"] is large and store.slow.bytes_read == 0
    store.hand_off_dropped()  # the batch ends
    back = store["big"]
    assert back is not large and (back == large).all() and store.slow.bytes_read > 0


def test_values_past_the_target_spill_least_recently_used_first(store):
    for i in range(3):
        store[f"k{i}"] = value(10, i)
    assert store.in_memory("k1") and store.in_memory("k2") and not store.in_memory("k0")
    assert 20 * MB <= store.managed <= 21 * MB and 10 * MB <= store.spilled <= 11 * MB
    store["k1"]  # k1 is now more recent than k2
    store["k3"] = value(10, 3)
    assert not store.in_memory("k2") and store.in_memory("k1")
    assert store["k0"] == value(10, 0)  # read back, transparently
    assert store.in_memory("k0")
    assert sorted(store) == ["k0", "k1", "k2", "k3"] and len(store) == 4


def test_a_value_read_back_has_room_made_for_it_before_it_is_read(store, monkeypatch):
    for i in range(4):
        store[f"k{i}"] = value(10, i)  # k0 and k1 spilled; k2 and k3 fill the target
    read = DiskMapping.__getitem__
    managed_while_reading = []

    def reading(disk, key):
        managed_while_reading.append(store.managed)
        return read(disk, key)
    monkeypatch.setattr(DiskMapping, "__getitem__", reading)
    assert store["k0"] == value(10, 0)
    assert managed_while_reading[0] + 10 * MB <= 25 * MB  # never the target and k0 at once
    assert store.in_memory("k0") and store.in_memory("k3") and not store.in_memory("k2")


def test_a_spilled_value_is_served_from_its_file_and_freed_with_its_key(store, tmp_path):
    for i in range(4):
        store[f"k{i}"] = value(10, i)
    payload = store.payload("k0")
    assert payload is not None and deserialize(payload) == value(10, 0)
    assert store.payload("k3") is None  # in memory: served from memory
    assert store.pop("k0") is None  # on disk: not read back just to be dropped
    del store["k1"]
    assert store.spilled == 0 and store.spilled_disk == 0
    store.clear()
    assert len(store) == 0 and store.managed == 0
    assert os.listdir(store.directory) == []


def test_values_read_back_and_evicted_again_are_written_once(store):
    for i in range(6):
        store[f"k{i}"] = value(10, i)
    for _ in range(5):  # every value goes back and forth between memory and disk
        for i in range(6):
            assert store[f"k{i}"] == value(10, i)
    assert all(store.slow.cached.get(f"k{i}") or f"k{i}" in store.slow for i in range(6))
    # One file per key, each written once: a value unchanged since it was read back keeps
    # its file and costs no second write when evicted again.
    assert store.slow.bytes_written == store.spilled_disk
    assert store.slow.bytes_read > store.spilled_disk


def test_a_value_over_the_target_by_itself_goes_straight_to_disk(store):
    store["big"] = value(30)
    assert not store.in_memory("big") and store.managed == 0
    assert store["big"] == value(30)  # read back but not kept: it can never fit
    assert not store.in_memory("big")


def test_an_unpicklable_value_stays_in_memory_reported_once(store, caplog):
    caplog.set_level(logging.WARNING, "dist.worker")
    lock = threading.Lock()
    store["lock"] = [lock, value(20)]
    store["a"] = value(10, 1)
    store["b"] = value(10, 2)
    assert store["lock"][0] is lock and "lock" in store.pinned
    assert not store.in_memory("a")  # the others spill past it
    store["c"] = value(10, 3)
    messages = [r.getMessage() for r in caplog.records if "lock" in r.getMessage()]
    assert len(messages) == 1 and "cannot be pickled" in messages[0]


def test_a_failing_disk_suspends_spilling_and_loses_nothing(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "dist.worker")
    now = [0.0]
    store = DataStore(target=15 * MB, directory=str(tmp_path), clock=lambda: now[0])
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store.slow.directory = str(blocker / "spill")  # every write now fails: ENOTDIR
    for i in range(4):
        store[f"k{i}"] = value(10, i)
    assert store.spill_suspended and "NotADirectoryError" in store.spill_error
    assert all(store[f"k{i}"] == value(10, i) for i in range(4))
    assert store.managed >= 40 * MB and store.spilled == 0
    assert sum("cannot spill" in r.getMessage() for r in caplog.records) == 1
    store.slow.directory = str(tmp_path / "spill")  # the disk works again...
    store.spill_to_target()
    assert store.spill_suspended  # ...but is not tried before the retry time
    now[0] += 60
    store.spill_to_target()
    assert not store.spill_suspended and store.managed <= 15 * MB
    assert any("works again" in r.getMessage() for r in caplog.records)
    store.close()


def test_without_a_target_nothing_spills_unless_asked(tmp_path):
    store = DataStore(target=None, directory=str(tmp_path))
    store["a"] = value(10)
    store["b"] = value(10)
    assert store.spilled == 0
    assert store.evict() >= 10 * MB  # the process is over its spill threshold: spill one
    assert not store.in_memory("a") and store.in_memory("b")
    assert store.evict() >= 10 * MB and store.evict() == 0
    store.close()
    assert not os.path.exists(store.directory)


def test_eviction_on_request_passes_over_a_running_tasks_inputs(tmp_path):
    store = DataStore(target=None, directory=str(tmp_path))
    for key in ("input", "other", "newest"):
        store[key] = value(5)
    assert store.evict(keep={"input"}) >= 5 * MB
    assert store.in_memory("input") and not store.in_memory("other")
    assert store.evict(keep={"input", "newest"}) == 0  # nothing else left in memory
    store.close()


def test_eviction_on_request_pins_what_cannot_spill_and_spills_the_next(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "dist.worker")
    store = DataStore(target=None, directory=str(tmp_path))
    store["lock"] = [threading.Lock(), value(5)]  # the least recently used, cannot be pickled
    store["next"] = value(5)
    assert store.evict() >= 5 * MB
    assert "lock" in store.pinned and not store.in_memory("next")
    assert store.evict(keep={"x"}) == 0  # nothing left that may spill
    store.close()


def test_what_the_store_weighs_returns_to_nothing_as_keys_are_freed(store):
    lock = threading.Lock()
    store["pinned"] = [lock, value(20)]  # cannot be pickled: stays
    store["none"] = None
    for i in range(4):
        store[f"k{i}"] = value(10, i)
    assert store["none"] is None and store.pop("none") is None
    for key in ["pinned", "k0", "k1", "k2", "k3"]:
        del store[key]
    assert store.managed == 0 and store.spilled == 0 and len(store) == 0
    assert store.weights == {}


def test_the_store_spills_with_the_codec_it_is_given(tmp_path):
    numpy = pytest.importorskip("numpy")
    store = DataStore(target=1, directory=str(tmp_path), spill_compression="zstd")
    keys = numpy.arange(1_000_000) % 1000
    store["k"] = keys  # over the target by itself: straight to disk
    assert store.slow.codec == "zstd" and "k" in store.slow
    assert store.spilled_disk < 0.2 * keys.nbytes and (store["k"] == keys).all()
    store.close()


class RecordsWhereDropped:
    def __init__(self, threads: list[str]):
        self.threads = threads

    def __del__(self):
        self.threads.append(threading.current_thread().name)


def test_freed_values_that_run_no_code_when_dropped_wake_no_thread(tmp_path):
    """A lone small result is freed once per task: handing an ``int`` to the disposal thread
    would wake that thread each time for nothing. A value with a finalizer still goes."""
    def disposal_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "dist-worker-disposal"}

    # (One closed by an earlier test may still be ending: only a new one counts.)
    before = disposal_threads()
    store = DataStore(target=None, directory=str(tmp_path))
    for key, plain in [("int", 1), ("float", 1.5), ("text", "x"), ("bytes", b"x"),
                       ("none", None)]:
        store[key] = plain
        del store[key]
    store.hand_off_dropped()
    assert disposal_threads() - before == set()

    dropped_on: list[str] = []
    store["object"] = RecordsWhereDropped(dropped_on)
    del store["object"]
    store.hand_off_dropped()
    store.close()  # its thread drops what it was handed, then ends
    for thread in threading.enumerate():
        if thread.name == "dist-worker-disposal" and thread not in before:
            thread.join(10)
    assert dropped_on == ["dist-worker-disposal"]


class WeighedOnlyOnItsThread:
    def __sizeof__(self):
        raise AssertionError("weighed on the event loop")


def test_a_value_weighed_on_its_task_s_thread_is_not_weighed_again(tmp_path):
    store = DataStore(target=None, directory=str(tmp_path))
    store.weighed("result", 1234)
    store["result"] = WeighedOnlyOnItsThread()
    assert store.weights["result"] == 1234
    store["other"] = [1, 2, 3]  # (what was said for "result" is not kept for others)
    assert store.weights["other"] == sizeof([1, 2, 3])
    store.close()
