"""Column blocks (feature ``columns``): a run of messages of one op as one array per field.

A block must decode to exactly the messages sent, as the same messages sent as maps do; a
malformed one is refused as the messages it stands for would be; a peer that did not agree
the feature never receives one."""
from __future__ import annotations

import copy
import dataclasses

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dist_protocol import columns
from dist_protocol.column_shape import expand_list
from dist_protocol import strategies as wire
from dist_protocol.connection import Connection
from dist_protocol.errors import InvalidMessage, ProtocolError, UnknownOp
from dist_protocol.framing import FrameDecoder
from dist_protocol.handshake import AcceptorHandshake, InitiatorHandshake
from dist_protocol.messages import (OPS, ComputeTask, FreeKeys, Heartbeat, KeyInMemory,
                                    PutData, Release, Submit, TaskFinished, TaskSpec,
                                    Unregister, decode_batch, encode_batch, encode_batches)
from dist_protocol.serialize import Payload
from dist_protocol.testing import connection_pair, example_message

pytestmark = pytest.mark.timeout(300)

SOME = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUNCTION = Payload("pickle", [b"function"])


def columnar(messages, max_frames=10_000):
    return [[bytes(f) for f in frames]
            for frames in encode_batches(list(messages), max_frames, columnar=True)]


def items_of(frames):
    return msgpack.unpackb(frames[0], raw=False)


def round_trip(messages):
    return [m for frames in columnar(messages) for m in decode_batch(frames, columnar=True)]


def outcome(frames, as_columns):
    try:
        return ("messages", decode_batch(frames, columnar=as_columns))
    except ProtocolError as exc:
        return ("error", type(exc), exc.code, exc.message)


def map_task(i):
    return ComputeTask(key=f"inc-{i}", function=FUNCTION, args=Payload("pickle", [b"a%d" % i]),
                       priority=-i, pickled_with="cpython-3.11")


# -- the same messages ---------------------------------------------------------------------


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_comes_back_as_sent(op):
    cls = OPS[op]
    for full in (False, True):
        message = example_message(cls, full)
        sent = [message, dataclasses.replace(message), message]
        assert round_trip(sent) == sent == decode_batch(encode_batch(sent))


@pytest.mark.parametrize("op", sorted(OPS))
def test_runs_of_any_valid_messages_come_back_as_sent(op):
    @SOME
    @given(st.lists(wire.messages([op]), min_size=2, max_size=6))
    def check(sent):
        received = round_trip(sent)
        assert received == sent
        assert [type(m) for m in received] == [type(m) for m in sent]
    check()


@SOME
@given(st.lists(wire.messages(["compute-task", "task-finished", "key-in-memory", "free-keys",
                               "release", "put-data"]), max_size=12))
def test_mixed_batches_keep_their_order(sent):
    assert round_trip(sent) == sent


def test_a_map_of_compute_tasks_is_one_block_with_the_function_once():
    sent = [map_task(i) for i in range(100)]
    [frames] = columnar(sent)
    [block] = items_of(frames)
    op, count, by_column, shared = block
    assert (op, count) == ("compute-task", 100)
    assert list(by_column) == ["key", "args", "priority"]
    assert shared == {"function": {"serializer": "pickle", "frames": [1]},
                      "pickled_with": "cpython-3.11"}
    assert len(frames) == 102  # frame 0, the function once, each task's arguments
    received = decode_batch(frames, columnar=True)
    assert received == sent
    assert received[0].function is received[99].function  # one payload read, as today
    assert received[0].pickled_with is received[1].pickled_with


def test_fields_at_their_default_are_left_out_and_nil_stands_for_absent():
    sent = [KeyInMemory(key="a", workers=["w1"]), KeyInMemory(key="b"),
            KeyInMemory(key="c", workers=["w2"])]
    [frames] = columnar(sent)
    assert items_of(frames) == [["key-in-memory", 3, {"key": ["a", "b", "c"],
                                                      "workers": [["w1"], None, ["w2"]]}, {}]]
    assert decode_batch(frames, columnar=True) == sent


def test_a_shared_list_or_map_is_each_message_s_own():
    frame0 = msgpack.packb([["compute-task", 2, {"key": ["a", "b"]},
                             {"function": "m:f", "who_has": {"x": ["w"]}}]])
    first, second = decode_batch([frame0], columnar=True)
    assert first.who_has == second.who_has == {"x": ["w"]}
    first.who_has["x"].append("v")
    assert second.who_has == {"x": ["w"]}
    a, b = decode_batch([msgpack.packb([["heartbeat", 2, {"x": [1, 2]},
                                         {"metrics": {"m": [1]}}]])], columnar=True)
    assert a.metrics is not b.metrics and a.metrics["m"] is not b.metrics["m"]


def test_runs_whose_every_field_is_the_default_go_as_maps():
    sent = [Unregister(), Unregister(), Heartbeat(), Heartbeat()]
    [frames] = columnar(sent)
    assert all(type(item) is dict for item in items_of(frames))
    assert decode_batch(frames, columnar=True) == sent


def test_a_run_of_equal_messages_takes_its_first_shared_field_as_a_column():
    sent = [FreeKeys(keys=["a"])] * 3 + [TaskFinished(key="k", nbytes=1)] * 2
    [frames] = columnar(sent)
    assert items_of(frames)[1] == ["task-finished", 2, {"key": ["k", "k"]}, {"nbytes": 1}]
    assert decode_batch(frames, columnar=True) == sent


def test_a_batch_of_one_message_is_written_as_ever():
    message = map_task(1)
    assert columnar([message]) == [[bytes(f) for f in encode_batch([message])]]


def test_a_batch_without_two_messages_of_one_op_in_a_row_skips_the_grouping(monkeypatch):
    """A lone task's batches (a submit with a release, a compute-task with a free-keys) hold
    no run: they are written message by message, the same bytes, without the column path's
    grouping (which cost such a batch several times its encoding)."""
    from dist_protocol import batches

    mixed = [Release(keys=["a"]), FreeKeys(keys=["b"]), Release(keys=["c"])]
    expected = columnar(mixed)

    def grouped(*args):
        raise AssertionError("a batch without a run took the column path")

    monkeypatch.setattr(batches, "_encode_columnar", grouped)
    assert columnar(mixed) == expected == [[bytes(f) for f in encode_batch(mixed)]]
    with pytest.raises(AssertionError):
        columnar([Release(keys=["a"]), Release(keys=["b"])])


def test_blocks_are_cut_where_the_batch_reaches_its_frame_limit():
    sent = [PutData(id=i, data={"k": Payload("bytes", [b"x"])}) for i in range(25)]
    batches = columnar(sent, max_frames=10)
    assert all(len(frames) <= 10 for frames in batches)
    assert [m for frames in batches for m in decode_batch(frames, columnar=True)] == sent


def test_blocks_of_messages_with_many_frames_each_are_cut_too():
    sent = [Submit(tasks=[TaskSpec(key=f"{i}-{j}", function="m:f",
                                   args=Payload("pickle", [b"a", b"buffer"]))
                          for j in range(3)]) for i in range(8)]
    batches = columnar(sent, max_frames=10)
    # message by message, a batch was cut after the submit that took it to 10 frames or more
    assert all(len(frames) <= 10 + 6 for frames in batches) and len(batches) > 2
    assert [m for frames in batches for m in decode_batch(frames, columnar=True)] == sent


def test_long_runs_are_cut_into_blocks_of_the_largest_count(monkeypatch):
    monkeypatch.setattr(columns, "MAX_COUNT", 4)
    sent = [FreeKeys(keys=[str(i)]) for i in range(10)]
    [frames] = columnar(sent)
    assert [item[1] for item in items_of(frames)] == [4, 4, 2]
    assert decode_batch(frames, columnar=True) == sent


# -- a block means the messages it stands for ------------------------------------------------


def expanded_batch(items, payload):
    """The same batch with every block written out as its message maps."""
    flat = []
    for item in items:
        if type(item) is list and len(item) == 4 and type(item[2]) is dict \
                and type(item[3]) is dict:
            flat.extend(columns.expand_block(*copy.deepcopy(item)))
        else:
            flat.append(item)
    return [msgpack.packb(flat, use_bin_type=True), *payload]


ODD = [None, True, 0, -1, 2**64 - 1, 1.5, float("inf"), "", "s", b"b", [], ["a"], [1], {},
       {"a": 1}, {"serializer": "pickle", "frames": [1]}, {"serializer": "bytes", "frames": [9]},
       {"serializer": "yaml", "frames": [1]}, {"key": "k", "function": "m:f"}]


def block_variants(block):
    """``block`` with each column's first value, and each shared value, set to each odd value,
    and each field moved between the maps or left out."""
    op, count, by_column, shared = block
    yield block
    for name in by_column:
        for odd in ODD:
            column = [odd, *by_column[name][1:]]
            yield [op, count, {**by_column, name: column}, shared]
        rest = {k: v for k, v in by_column.items() if k != name}
        if rest:
            yield [op, count, rest, shared]
            yield [op, count, rest, {**shared, name: by_column[name][0]}]
    for name in shared:
        for odd in ODD:
            yield [op, count, by_column, {**shared, name: odd}]
        yield [op, count, by_column, {k: v for k, v in shared.items() if k != name}]


def blocks_of(op):
    cls = OPS[op]
    for full in (False, True):
        sent = [example_message(cls, full), example_message(cls, full)]
        frames = columnar(sent)[0]
        for item in items_of(frames):
            if type(item) is list:
                yield item, frames[1:]


@pytest.mark.parametrize("op", sorted(OPS))
def test_odd_blocks_get_the_answer_their_messages_get(op):
    for block, payload in blocks_of(op):
        for changed in block_variants(block):
            frames = [msgpack.packb([changed], use_bin_type=True), *payload]
            got = outcome(frames, as_columns=True)
            assert got == outcome(expanded_batch([changed], payload), as_columns=True), changed


@SOME
@given(st.lists(wire.message_maps(), min_size=1, max_size=5),
       st.lists(st.binary(max_size=8), max_size=3))
def test_blocks_pivoted_from_any_message_maps_get_their_answer(maps, payload):
    # maps of one op, pivoted into a block with every field a column (nil where absent)
    op = maps[0].get("op")
    same = [{k: v for k, v in m.items() if k != "op"} for m in maps if m.get("op") == op]
    if type(op) is not str or not same:
        return
    names = list(dict.fromkeys(name for m in same for name in m))
    if not names:
        return
    block = [op, len(same), {name: [m.get(name) for m in same] for name in names}, {}]
    frames = [msgpack.packb([block], use_bin_type=True), *payload]
    assert outcome(frames, as_columns=True) == outcome(expanded_batch([block], payload), True)


# -- hostile blocks --------------------------------------------------------------------------


HOSTILE = {
    "not four items": ["free-keys", 1, {"keys": [["a"]]}],
    "five items": ["free-keys", 1, {"keys": [["a"]]}, {}, {}],
    "a column of the wrong length": ["free-keys", 2, {"keys": [["a"]]}, {}],
    "a count of zero": ["free-keys", 0, {"keys": []}, {}],
    "a negative count": ["free-keys", -1, {"keys": []}, {}],
    "an absurd count": ["unregister", 10**9, {"x": [None]}, {}],
    "a count that is a float": ["free-keys", 1.0, {"keys": [["a"]]}, {}],
    "a count that is a bool": ["free-keys", True, {"keys": [["a"]]}, {}],
    "an op that is not a string": [1, 1, {"keys": [["a"]]}, {}],
    "no column": ["unregister", 1000, {}, {}],
    "columns that are a list": ["free-keys", 1, [["a"]], {}],
    "shared values that are a list": ["free-keys", 1, {"keys": [["a"]]}, ["a"]],
    "a column that is a map": ["free-keys", 1, {"keys": {"a": 1}}, {}],
    "a column that is a string": ["free-keys", 1, {"keys": "a"}, {}],
    "a field in both maps": ["free-keys", 1, {"keys": [["a"]]}, {"keys": ["a"]}],
    "op as a column": ["free-keys", 1, {"keys": [["a"]], "op": ["release"]}, {}],
    "op as a shared value": ["free-keys", 1, {"keys": [["a"]]}, {"op": "release"}],
    "a binary field name": ["free-keys", 1, {b"keys": [["a"]]}, {}],
    "a value of the wrong type": ["free-keys", 2, {"keys": [["a"], [1]]}, {}],
    "a required field missing": ["key-lost", 1, {"key": ["a"]}, {}],
    "a block nested in a column": ["free-keys", 1, {"keys": [["free-keys", 1, {}, {}]]}, {}],
    "a block nested in a shared value": ["key-lost", 1, {"key": ["a"]},
                                         {"message": ["key-lost", 1, {}, {}]}],
    "a payload naming a missing frame": ["task-finished", 1, {"key": ["a"]},
                                         {"nbytes": 1, "value": {"serializer": "pickle",
                                                                 "frames": [3]}}],
    "a negative size": ["task-finished", 2, {"key": ["a", "b"], "nbytes": [1, -1]}, {}],
}


@pytest.mark.parametrize("block", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_malformed_block_is_an_invalid_message(block):
    frame0 = msgpack.packb([{"op": "release", "keys": []}, block], use_bin_type=True)
    with pytest.raises(InvalidMessage) as caught:
        decode_batch([frame0, b"x"], columnar=True)
    assert caught.value.code == "invalid-message"


def test_an_unknown_op_in_a_block_is_unknown_op():
    frame0 = msgpack.packb([["teleport", 1, {"to": ["moon"]}, {}]])
    with pytest.raises(UnknownOp):
        decode_batch([frame0], columnar=True)


def test_a_shared_value_nested_deeply_is_read_or_refused_never_a_crash():
    for depth in (100, 1000, 5000):
        deep = b"\x91" * depth + b"\x90"  # arrays in arrays
        frame0 = (b"\x91\x94\xa9heartbeat\x02\x81\xa1x\x92\x01\x02\x81\xa7metrics\x81\xa1m"
                  + deep)
        got = outcome([frame0], as_columns=True)
        assert got[0] == "messages" or got[2] == "invalid-message"


def test_a_bad_block_costs_its_connection_only():
    client, center = connection_pair(who="center")
    bad = msgpack.packb([["release", 2, {"keys": [["a"]]}, {}]])
    with pytest.raises(InvalidMessage):
        center.receive_data(framed([bad]))
    other_client, other_center = connection_pair(who="center")
    other_client.send(Release(keys=["a"]), Release(keys=["b"]))
    assert other_center.receive_data(b"".join(other_client.data_to_send())) == [
        Release(keys=["a"]), Release(keys=["b"])]


# -- column lists: a message's list of records --------------------------------------------


def map_submit(n):
    return Submit(tasks=[TaskSpec(key=f"inc-{i}", function=FUNCTION,
                                  args=Payload("pickle", [b"a%d" % i]),
                                  pickled_with="cpython-3.11") for i in range(n)],
                  small_values=True)


def test_a_map_s_submit_carries_its_tasks_as_one_column_list():
    sent = map_submit(1000)
    [frames] = columnar([sent])
    [item] = items_of(frames)
    tasks = item["tasks"]
    assert list(tasks) == ["count", "columns", "shared"] and tasks["count"] == 1000
    assert list(tasks["columns"]) == ["key", "args"]
    assert tasks["shared"] == {"function": {"serializer": "pickle", "frames": [1]},
                               "pickled_with": "cpython-3.11"}
    [received] = decode_batch(frames, columnar=True)
    assert received == sent
    assert all(type(task) is TaskSpec for task in received.tasks)
    assert received.tasks[0].function is received.tasks[999].function


def test_a_column_list_is_refused_where_columns_was_not_agreed():
    [frames] = columnar([map_submit(3)])
    with pytest.raises(InvalidMessage, match="expected list, got dict"):
        decode_batch(frames)
    assert decode_batch(encode_batch([map_submit(3)])) == [map_submit(3)]  # arrays as ever


def test_a_shared_list_of_a_column_list_is_each_record_s_own():
    frame0 = msgpack.packb([{"op": "submit", "tasks": {
        "count": 2, "columns": {"key": ["a", "b"]},
        "shared": {"function": "m:f", "deps": ["x"], "resources": {"GPU": 1.0}}}}])
    [submit] = decode_batch([frame0], columnar=True)
    first, second = submit.tasks
    assert first.deps == second.deps == ["x"] and first.deps is not second.deps
    assert first.resources is not second.resources


def column_list_variants(tasks):
    for changed in block_variants(["submit", tasks["count"], tasks["columns"], tasks["shared"]]):
        yield {"count": changed[1], "columns": changed[2], "shared": changed[3]}


def test_odd_column_lists_get_the_answer_their_records_get():
    [frames] = columnar([Submit(tasks=[
        TaskSpec(key="a", function=FUNCTION, args=Payload("pickle", [b"x"]), deps=["k"],
                 priority=1, workers=["w"], resources={"GPU": 1.0}, retries=2,
                 pickled_with="cpython-3.11", actor=False, max_restarts=1),
        TaskSpec(key="b", function=FUNCTION, priority=2, allow_other_workers=True)])])
    [item] = items_of(frames)
    for tasks in column_list_variants(item["tasks"]):
        as_list = [msgpack.packb([{**item, "tasks": tasks}], use_bin_type=True), *frames[1:]]
        records = expand_list(copy.deepcopy(tasks))
        as_array = [msgpack.packb([{**item, "tasks": records}], use_bin_type=True),
                    *frames[1:]]
        assert outcome(as_list, True) == outcome(as_array, True), tasks


HOSTILE_LISTS = {
    "another key": {"count": 1, "columns": {"key": ["a"]}, "shared": {"function": "m:f"},
                    "x": 1},
    "a key missing": {"count": 1, "columns": {"key": ["a"]}},
    "a count of zero": {"count": 0, "columns": {}, "shared": {}},
    "an absurd count": {"count": 10**9, "columns": {"key": ["a"]}, "shared": {}},
    "a column too short": {"count": 2, "columns": {"key": ["a"]}, "shared": {"function": "f"}},
    "no column": {"count": 1, "columns": {}, "shared": {"key": "a", "function": "m:f"}},
    "a field in both": {"count": 1, "columns": {"key": ["a"]}, "shared": {"key": "a"}},
    "a value of the wrong type": {"count": 1, "columns": {"key": [1]},
                                  "shared": {"function": "m:f"}},
    "a required field missing": {"count": 1, "columns": {"key": ["a"]}, "shared": {}},
    "a column list in a column list": {"count": 1, "columns": {"key": [
        {"count": 1, "columns": {"key": ["a"]}, "shared": {}}]}, "shared": {"function": "f"}},
}


@pytest.mark.parametrize("tasks", list(HOSTILE_LISTS.values()), ids=list(HOSTILE_LISTS))
def test_a_malformed_column_list_is_an_invalid_message(tasks):
    frame0 = msgpack.packb([{"op": "submit", "tasks": tasks}])
    with pytest.raises(InvalidMessage):
        decode_batch([frame0], columnar=True)


# -- only where agreed -----------------------------------------------------------------------


def framed(frames):
    from dist_protocol.framing import frames_to_bytes
    return frames_to_bytes(frames)


def pair_with(initiator_features, acceptor_features):
    client = Connection(InitiatorHandshake("client", features=initiator_features))
    center = Connection(AcceptorHandshake(features=acceptor_features), who="center")
    for _ in range(4):
        for sender, receiver in ((client, center), (center, client)):
            for buf in sender.data_to_send():
                receiver.receive_data(buf)
    assert client.established and center.established
    return client, center


@pytest.mark.parametrize("ours, theirs", [(["columns"], []), ([], ["columns"]),
                                          ([], [])])
def test_a_peer_without_the_feature_gets_message_maps(ours, theirs):
    client, center = pair_with(ours, theirs)
    center.send(*(KeyInMemory(key=str(i), nbytes=1) for i in range(5)))
    data = b"".join(bytes(b) for b in center.data_to_send())
    [frames] = FrameDecoder().feed(data)
    assert all(type(item) is dict for item in items_of(frames))
    assert client.receive_data(data) == [KeyInMemory(key=str(i), nbytes=1) for i in range(5)]


def test_a_block_from_a_peer_that_did_not_agree_is_an_invalid_message():
    client, center = pair_with([], ["columns"])
    block = msgpack.packb([["release", 2, {"keys": [["a"], ["b"]]}, {}]])
    with pytest.raises(InvalidMessage, match="each message must be a map"):
        center.receive_data(framed([block]))


def test_peers_that_agreed_exchange_blocks_both_ways():
    client, center = pair_with(["columns"], ["columns"])
    client.send(Release(keys=["a"]), Release(keys=["b"]))
    data = b"".join(bytes(b) for b in client.data_to_send())
    [frames] = FrameDecoder().feed(data)
    assert type(items_of(frames)[0]) is list
    assert center.receive_data(data) == [Release(keys=["a"]), Release(keys=["b"])]
    center.send(*(KeyInMemory(key=str(i), nbytes=i) for i in range(3)))
    assert client.receive_data(b"".join(bytes(b) for b in center.data_to_send())) == [
        KeyInMemory(key=str(i), nbytes=i) for i in range(3)]


def test_the_catalogue_s_directions_apply_to_each_message_of_a_block():
    client, center = pair_with(["columns"], ["columns"])
    block = msgpack.packb([["key-in-memory", 2, {"key": ["a", "b"]}, {}]])
    with pytest.raises(InvalidMessage, match="not sent by clients"):
        center.receive_data(framed([block]))


@pytest.mark.parametrize("index", [1.0, True])
@pytest.mark.parametrize("as_block", [True, False])
def test_a_payload_index_equal_to_a_frame_s_but_not_an_int_is_refused(index, as_block):
    # The frame read for the first message must not answer for the second one's index.
    refs = [{"serializer": "pickle", "frames": [1]}, {"serializer": "pickle", "frames": [index]}]
    if as_block:
        items = [["task-finished", 2, {"key": ["a", "b"], "value": refs}, {"nbytes": 1}]]
    else:
        items = [{"op": "task-finished", "key": key, "nbytes": 1, "value": ref}
                 for key, ref in zip("ab", refs)]
    frames = [msgpack.packb(items, use_bin_type=True), b"value"]
    with pytest.raises(InvalidMessage):
        decode_batch(frames, columnar=True)


# -- frame columns (feature frame-columns) -----------------------------------------------------


def with_frame_columns(messages, max_frames=10_000):
    return [[bytes(f) for f in frames]
            for frames in encode_batches(list(messages), max_frames, columnar=True,
                                         frame_columns=True)]


def test_with_frame_columns_a_map_s_arguments_are_one_frame_column():
    sent = [map_task(i) for i in range(100)]
    [frames] = with_frame_columns(sent)
    [[op, count, by_column, shared]] = items_of(frames)
    assert by_column["args"] == {"serializer": "pickle", "frames": list(range(2, 102))}
    assert shared["function"] == {"serializer": "pickle", "frames": [1]}
    assert len(frames) == 102
    received = decode_batch(frames, columnar=True, frame_columns=True)
    assert received == sent
    assert received[0].function is received[99].function
    with pytest.raises(InvalidMessage, match="must be an array of 100 values$"):
        decode_batch(frames, columnar=True)  # (a peer that did not agree frame-columns)
    odd = {**by_column["args"], "compression": None}
    odd_frames = [msgpack.packb([[op, count, {**by_column, "args": odd}, shared]]), *frames[1:]]
    with pytest.raises(InvalidMessage, match="or a frame column"):
        decode_batch(odd_frames, columnar=True, frame_columns=True)


def test_absent_values_are_nil_in_a_frame_column():
    sent = [TaskFinished(key="a", nbytes=1, value=Payload("pickle", [b"1"])),
            TaskFinished(key="b", nbytes=1),
            TaskFinished(key="c", nbytes=1, value=Payload("pickle", [b"3"]))]
    [frames] = with_frame_columns(sent)
    [[_, _, by_column, _]] = items_of(frames)
    assert by_column["value"] == {"serializer": "pickle", "frames": [1, None, 2]}
    assert decode_batch(frames, columnar=True, frame_columns=True) == sent


def compressed(payload):
    payload.compression = ["lz4"]
    return payload


@pytest.mark.parametrize("values", [
    [Payload("pickle", [b"1"]), Payload("msgpack", [b"\x02"])],  # two serializers
    [Payload("pickle", [b"1"]), Payload("pickle", [b"2", b"buffer"])],  # two frames
    [Payload("pickle", [b"1"]), compressed(Payload("pickle", [b"2"]))],
    [None, None],
])
def test_payloads_a_frame_column_cannot_stand_for_go_as_an_array(values):
    sent = [TaskFinished(key=str(i), nbytes=1, value=value) for i, value in enumerate(values)]
    [frames] = with_frame_columns(sent)
    [[_, _, by_column, _]] = items_of(frames)
    assert type(by_column.get("value", [])) is list
    if not any(value is not None and value.compression for value in values):
        assert decode_batch(frames, columnar=True, frame_columns=True) == sent


def test_one_payload_in_every_message_is_shared_not_a_frame_column():
    sent = [map_task(i) for i in range(3)]
    sent = [dataclasses.replace(task, args=FUNCTION) for task in sent]
    [frames] = with_frame_columns(sent)
    [[_, _, by_column, shared]] = items_of(frames)
    assert "args" not in by_column and shared["args"] == shared["function"]
    assert decode_batch(frames, columnar=True, frame_columns=True) == sent


def test_a_submit_s_column_list_carries_its_arguments_as_a_frame_column():
    sent = Submit(tasks=[TaskSpec(key=f"inc-{i}", function=FUNCTION,
                                  args=Payload("pickle", [b"a%d" % i])) for i in range(5)])
    [frames] = with_frame_columns([sent])
    [submit] = items_of(frames)
    assert submit["tasks"]["columns"]["args"] == {"serializer": "pickle",
                                                  "frames": [2, 3, 4, 5, 6]}
    assert decode_batch(frames, columnar=True, frame_columns=True) == [sent]
    with pytest.raises(InvalidMessage):
        decode_batch(frames, columnar=True)


@pytest.mark.parametrize("op", ["compute-task", "task-finished", "key-in-memory", "submit"])
def test_runs_with_frame_columns_come_back_as_sent(op):
    @SOME
    @given(st.lists(wire.messages([op]), min_size=2, max_size=6))
    def check(sent):
        received = [m for frames in with_frame_columns(sent)
                    for m in decode_batch(frames, columnar=True, frame_columns=True)]
        assert received == sent
    check()


@pytest.mark.parametrize("ours, theirs, expected", [
    (["columns", "frame-columns"], ["columns", "frame-columns"], dict),
    (["columns", "frame-columns"], ["columns"], list),
    (["columns"], ["columns", "frame-columns"], list),
])
def test_frame_columns_go_only_to_peers_that_agreed_them(ours, theirs, expected):
    client, center = pair_with(ours, theirs)
    sent = [KeyInMemory(key=str(i), nbytes=1, value=Payload("pickle", [b"%d" % i]))
            for i in range(3)]
    center.send(*sent)
    data = b"".join(bytes(b) for b in center.data_to_send())
    [frames] = FrameDecoder().feed(data)
    [[_, _, by_column, _]] = items_of(frames)
    assert type(by_column["value"]) is expected
    assert client.receive_data(data) == sent


def test_a_payload_of_a_frame_column_met_again_in_its_batch_travels_once():
    value = Payload("pickle", [b"the value"])
    sent = [TaskFinished(key="a", nbytes=1, value=value),
            TaskFinished(key="b", nbytes=1, value=Payload("pickle", [b"another"])),
            KeyInMemory(key="a", nbytes=1, value=value),  # alone: a message map
            TaskFinished(key="c", nbytes=1, value=value),
            TaskFinished(key="d", nbytes=1, value=Payload("pickle", [b"more"]))]
    [frames] = with_frame_columns(sent)
    first, alone, second = items_of(frames)
    assert first[2]["value"] == {"serializer": "pickle", "frames": [1, 2]}
    assert alone["value"] == {"serializer": "pickle", "frames": [1]}
    assert second[2]["value"] == {"serializer": "pickle", "frames": [1, 3]}
    assert len(frames) == 4
    assert decode_batch(frames, columnar=True, frame_columns=True) == sent
