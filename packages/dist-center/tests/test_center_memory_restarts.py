"""A worker restarted for memory names the values it blames (feature memory-restart): the
restart counts as a death of their tasks, so that a value too large for its worker fails as
KilledWorker instead of being made again and again."""
from dist_protocol.messages import RestartingForMemory, TaskErred

MB = 10**6


def restart_for_memory(center, address, blamed, memory=205 * MB):
    center.worker_sent(address, RestartingForMemory(keys=blamed, memory=memory))
    return center.leave(address, reason="connection reset")


def test_a_value_past_terminate_fails_after_three_restarts_instead_of_looping(center, match):
    center.join("w", memory_limit=200 * MB)
    center.submit("big")
    for restarts in (1, 2):
        center.finished("w", "big", nbytes=170 * MB)
        assert restart_for_memory(center, "w", {"big": 170 * MB}) == []
        assert center.task("big").died_on == ("w",) * restarts
        assert center.join("w", memory_limit=200 * MB)[-1] == ("w", center.compute("big"))
    center.finished("w", "big", nbytes=170 * MB)

    out = restart_for_memory(center, "w", {"big": 170 * MB})

    assert out == [("alice", match(
        TaskErred, key="big", exception_type="KilledWorker",
        message="task big was lost with its workers 3 times: w, w, w; the worker was "
                "restarted for memory each time its value (170 MB) was held, past its memory "
                "limit (200 MB) with the worker's own memory; giving up (give the workers a "
                "larger memory limit, or make the value smaller)"))]
    assert center.state_of("big") == "erred"
    center.join("w", memory_limit=200 * MB)
    assert center.processing("w") == []  # the loop has stopped


def test_a_small_value_blamed_in_a_process_of_other_memory_is_not_called_the_cause(center,
                                                                                    match):
    # A dataframe worker at 409 MB of 400, 0 B of it values, blamed a spilled 38 MB
    # partition three times: the advice to make the value smaller was the wrong one.
    center.join("w", memory_limit=400 * MB)
    center.submit("part")
    for _ in range(3):
        center.finished("w", "part", nbytes=38 * MB)
        out = restart_for_memory(center, "w", {"part": 38 * MB}, memory=409 * MB)
        center.join("w", memory_limit=400 * MB)

    assert out == [("alice", match(
        TaskErred, key="part", exception_type="KilledWorker",
        message="task part was lost with its workers 3 times: w, w, w; the worker was "
                "restarted for memory each time its value (38 MB) was held, but the value was "
                "the lesser part: the worker process held 409 MB at the last restart, against "
                "its memory limit (400 MB), most of it the worker's own (libraries, the "
                "allocator, what tasks left); giving up (give the workers a larger memory "
                "limit)"))]


def test_what_reads_the_value_errs_too(center):
    # (the reader, running when each restart came, counts them as deaths of its own)
    center.join("w", nthreads=2, memory_limit=200 * MB)
    center.join("spare", memory_limit=200 * MB)
    center.submit("big", center.spec("read", "big"))
    for _ in range(3):
        center.finished(center.processing_on("big"), "big", nbytes=170 * MB)
        holder = center.who_has("big").pop()
        out = restart_for_memory(center, holder, {"big": 170 * MB})
        center.join(holder, nthreads=2, memory_limit=200 * MB)

    assert center.state_of("big") == center.state_of("read") == "erred"
    errors = {msg.key: msg for _, msg in out}
    assert sorted(errors) == ["big", "read"]
    assert "restarted for memory each time its value (170 MB)" in errors["big"].message
    assert errors["read"].exception_type == "KilledWorker"


def test_only_the_blamed_values_lost_with_the_worker_count(center):
    center.join("w", memory_limit=200 * MB)
    center.submit("big", "small")
    center.finished("w", "big", nbytes=170 * MB)
    center.finished("w", "small", nbytes=8)

    restart_for_memory(center, "w", {"big": 170 * MB})

    assert (center.task("big").died_on, center.task("small").died_on) == (("w",), ())


def test_a_blamed_value_with_a_copy_elsewhere_is_not_lost_and_counts_nothing(center):
    center.join("w1", memory_limit=200 * MB)
    center.submit("big")
    center.finished("w1", "big", nbytes=170 * MB)
    center.join("w2", keys={"big": 170 * MB}, memory_limit=200 * MB)

    restart_for_memory(center, "w1", {"big": 170 * MB})

    assert center.state_of("big") == "memory"
    assert center.task("big").died_on == ()
