"""The state directory's journal: events written in groups come back as they went in; a
directory it cannot read (damaged, another format, another program's database) is refused
with a message saying so and left as it was; one center at a time."""
from __future__ import annotations

import sqlite3

import pytest
from dist_center.events import (ClientConnected, ClientDisconnected, ClientSent,
                                DetachedTimedOut, Recovering, TaskFailed)
from dist_center.store import DATABASE, StateDirError, StateStore
from dist_protocol.messages import Release, Submit, TaskErred, TaskSpec
from dist_protocol.serialize import serialize

ERROR = TaskErred(key="b", exception_type="ValueError", message="boom", traceback="tb")


def events():
    task = TaskSpec(key="a", function=serialize(len), args=serialize(((1, 2),)), retries=2,
                    workers=["w1"], resources={"GPU": 1.0})
    return [Recovering(), ClientConnected("c-1", frozenset({"key-recomputing"})),
            ClientSent("c-1", Submit(tasks=[task], small_values=True)),
            ClientSent("c-1", Release(keys=["a"])), TaskFailed("b", ERROR),
            DetachedTimedOut(), ClientDisconnected("c-1")]


def test_events_come_back_as_they_were_written(tmp_path):
    store = StateStore(tmp_path)
    for event in events():
        store.record(event)
    store.worker_joined("w1")
    store.worker_joined("w2")
    store.worker_left("w1")
    assert store.rows == 0  # recorded, not written yet
    store.commit()
    assert store.rows == 10 and store.commits == 1
    store.close()
    recovered = StateStore(tmp_path).load()
    assert recovered.events == events()
    assert recovered.workers == {"w2"} and recovered.starts == 1


def test_what_was_not_committed_is_not_there(tmp_path):
    store = StateStore(tmp_path)
    store.record(ClientConnected("c-1"))
    store.commit()
    store.record(ClientDisconnected("c-1"))
    store.close()  # (closing commits)
    assert StateStore(tmp_path).load().events == [ClientConnected("c-1"),
                                                   ClientDisconnected("c-1")]


def test_a_relative_directory_opens_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as ``dcenter --state-dir state`` started there
    store = StateStore("state")
    store.record(ClientConnected("c-1"))
    store.close()
    assert StateStore("state").load().events == [ClientConnected("c-1")]


def test_rewriting_replaces_the_journal(tmp_path):
    store = StateStore(tmp_path)
    for event in events():
        store.record(event)
    store.commit()
    store.rewrite([ClientConnected("c-2")], ["w3"])
    assert store.rows == 2 and store.tasks_written == 0
    store.record(ClientDisconnected("c-2"))
    store.close()
    recovered = StateStore(tmp_path).load()
    assert recovered.events == [ClientConnected("c-2"), ClientDisconnected("c-2")]
    assert recovered.workers == {"w3"}


def test_a_second_center_on_the_directory_is_refused(tmp_path):
    store = StateStore(tmp_path)
    with pytest.raises(StateDirError, match="in use by another center"):
        StateStore(tmp_path)
    store.close()
    StateStore(tmp_path).close()


def written(tmp_path):
    store = StateStore(tmp_path)
    for event in events():
        store.record(event)
    store.close()
    return tmp_path / DATABASE


@pytest.mark.parametrize("damage, says", [
    ("garbage", "SQLite says: file is not a database"),
    ("other-version", "written in format 7, and this center reads format 1"),
    ("other-program", "not a dist center's state"),
    ("bad-entry", "journal entry 3 (client-sent) cannot be read"),
    ("unknown-kind", "journal entry 1 is of an unknown kind 'mystery'"),
])
def test_a_state_it_cannot_read_is_refused_and_left_alone(tmp_path, damage, says):
    database = written(tmp_path)
    if damage == "garbage":
        database.write_bytes(b"\x00not a database" * 1000)
    else:
        with sqlite3.connect(database) as db:
            if damage == "other-version":
                db.execute("PRAGMA user_version=7")
            elif damage == "other-program":
                db.execute("PRAGMA application_id=42")
            elif damage == "bad-entry":
                db.execute("UPDATE journal SET body=x'0100000000000000ff' WHERE seq=3")
            else:
                db.execute("UPDATE journal SET kind='mystery' WHERE seq=1")
        db.close()
    before = database.read_bytes()
    with pytest.raises(StateDirError) as info:
        StateStore(tmp_path).load()
    assert says in str(info.value)
    assert "--state-dir-reset" in str(info.value)
    assert database.read_bytes() == before
    # Reset: begin empty.
    assert StateStore(tmp_path, reset=True).load().events == []


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StateDirError, match="cannot create the state directory"):
        StateStore(tmp_path / "file" / "state")


def test_a_commit_that_fails_keeps_its_rows_for_the_next(tmp_path, monkeypatch):
    store = StateStore(tmp_path)
    store.record(ClientConnected("c-1"))
    real = store._db
    failing = sqlite3.connect(":memory:", isolation_level=None)  # no journal table in it
    store._db = failing
    with pytest.raises(sqlite3.OperationalError):
        store.commit()
    assert store.dirty and store.rows == 0
    store._db = real
    store.commit()
    store.close()
    assert StateStore(tmp_path).load().events == [ClientConnected("c-1")]
