"""The center's state directory: a journal of the events the center's durable state follows
from, in SQLite (WAL mode), so that a center killed and started again on the same directory
takes up where it was.

The center is a pure function of its events, so the journal holds events, not tables: what
clients asked (connected, submitted, released, cancelled, restarted, resumed a session, left),
the failures workers reported (an error or a retry used is not on any worker to be found
again), which workers were registered, and a mark at every start. Replaying them into a new
``CenterState`` (with no workers: nothing runs while it replays) rebuilds the task graph with
its payloads, who wants which key, restrictions, retries and errors; what is in memory comes
back with the workers, which register again with the keys they hold.

Writes are grouped: ``record`` only buffers, and ``commit`` writes the buffer in one
transaction with one fsync (the server commits once per turn of its event loop). When the
journal holds much more than the state it describes (tasks released since), ``rewrite``
replaces it with the events of the state as it is, in one transaction.

Only this module touches the directory; a second center on it is refused (a lock file).
"""
from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterable, Iterator
from contextlib import closing as _closing
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import msgpack
from dist_protocol.errors import InvalidMessage
from dist_protocol.framing import frames_to_bytes
from dist_protocol.messages import Message, TaskErred, decode_batch, encode_batch

from .events import (ClientConnected, ClientDisconnected, ClientSent, DetachedTimedOut, Event,
                     Recovering, TaskFailed)

if TYPE_CHECKING:  # imported where used: most centers run without a state directory
    import sqlite3
    from pathlib import Path

FORMAT_VERSION = 1
# SQLite's application_id for the center's state: "dstc". A database of another program
# is refused instead of being written to.
APPLICATION_ID = 0x64737463
DATABASE = "center.sqlite3"
LOCK = "lock"


class StateDirError(Exception):
    """The state directory cannot be used as it is: what is wrong, and what to do."""


@dataclass
class Recovered:
    """What the journal holds: the events to replay, in order, and the workers registered
    when the center stopped (their addresses, to wait for while they come back)."""

    events: list[Event]
    workers: set[str]
    starts: int  # how many times a center started on this directory before


# Kinds of journal rows. A worker row is not an event the state replays: it says which
# workers to wait for.
_CONNECTED, _SENT, _DISCONNECTED, _FAILED = "client-connected", "client-sent", "client-left", \
    "task-failed"
_WORKER_JOINED, _WORKER_LEFT, _RECOVERING, _DETACHED_TIMED_OUT = "worker-joined", \
    "worker-left", "recovering", "detached-timed-out"

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,
                      body BLOB);
"""


class StateStore:
    """The journal in ``directory``; ``open`` checks it, ``load`` reads it back."""

    def __init__(self, directory: str | os.PathLike[str], reset: bool = False) -> None:
        from pathlib import Path

        # Absolute: a relative one cannot be written as the URI that opens it read-only.
        self.directory: Path = Path(directory).absolute()
        self.path = self.directory / DATABASE
        self._lock: IO[bytes] | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, str, bytes | None]] = []
        self.rows = 0  # rows in the journal now
        self.tasks_written = 0  # task specs written since the journal was last rewritten
        self.commits = 0
        self._open(reset)

    # -- opening -------------------------------------------------------------------------------
    def _open(self, reset: bool) -> None:
        import sqlite3

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateDirError(f"cannot create the state directory {self.directory}: "
                                f"{exc}") from None
        self._take_lock()
        if reset:
            for name in (DATABASE, DATABASE + "-wal", DATABASE + "-shm"):
                (self.directory / name).unlink(missing_ok=True)
        fresh = not self.path.exists()
        if not fresh:  # checked read-only: a state refused is left exactly as it was
            try:
                with _closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)) as db:
                    self._check(db)
            except sqlite3.DatabaseError as exc:
                self.close()
                raise StateDirError(self._unreadable(f"SQLite says: {exc}")) from None
            except StateDirError:
                self.close()
                raise
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db = self._db
            if fresh:
                self._create(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # an fsync at every commit
            self.rows = db.execute("SELECT count(*) FROM journal").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StateDirError(self._unreadable(f"SQLite says: {exc}")) from None

    def _take_lock(self) -> None:
        self._lock = open(self.directory / LOCK, "ab")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise StateDirError(f"the state directory {self.directory} is in use by another "
                                "center: each center needs its own") from None

    def _create(self, db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
        db.executescript(_SCHEMA)

    def _check(self, db: sqlite3.Connection) -> None:
        application = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if application != APPLICATION_ID:
            raise StateDirError(self._unreadable("it is an SQLite database, but not a dist "
                                                 "center's state"))
        if version != FORMAT_VERSION:
            raise StateDirError(self._unreadable(
                f"it was written in format {version}, and this center reads format "
                f"{FORMAT_VERSION} only"))
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StateDirError(self._unreadable("it is damaged: " + "; ".join(problems[:5])))

    def _unreadable(self, why: str) -> str:
        return (f"cannot use the center's state in {self.path}: {why}. Nothing was changed. "
                "Start the center with --state-dir-reset to discard that state and begin "
                "empty, or point --state-dir at another directory")

    # -- reading -------------------------------------------------------------------------------
    def load(self) -> Recovered:
        """Every event in the journal, decoded; ``StateDirError`` on a row that is not (the
        store is closed then)."""
        try:
            return self._load()
        except StateDirError:
            self.close()
            raise

    def _load(self) -> Recovered:
        import sqlite3

        assert self._db is not None
        events: list[Event] = []
        workers: set[str] = set()
        starts = 0
        try:
            rows = self._db.execute("SELECT seq, kind, subject, body FROM journal ORDER BY seq")
            for seq, kind, subject, body in rows:
                if kind == _WORKER_JOINED:
                    workers.add(subject)
                elif kind == _WORKER_LEFT:
                    workers.discard(subject)
                else:
                    event = self._decode(seq, kind, subject, body)
                    events.append(event)
                    if isinstance(event, ClientSent):
                        self.tasks_written += len(getattr(event.message, "tasks", ())) or 1
                    if kind == _RECOVERING:
                        starts += 1
        except sqlite3.DatabaseError as exc:
            raise StateDirError(self._unreadable(f"SQLite says: {exc}")) from None
        return Recovered(events, workers, starts)

    def _decode(self, seq: int, kind: str, subject: str, body: bytes | None) -> Event:
        try:
            if kind == _CONNECTED:
                return ClientConnected(subject, frozenset(msgpack.unpackb(body)))
            if kind == _SENT:
                return ClientSent(subject, _message(body))
            if kind == _DISCONNECTED:
                return ClientDisconnected(subject)
            if kind == _FAILED:
                error = _message(body)
                if not isinstance(error, TaskErred):
                    raise InvalidMessage(f"a task failure holds {error.op!r}")
                return TaskFailed(subject, error)
            if kind == _RECOVERING:
                return Recovering()
            if kind == _DETACHED_TIMED_OUT:
                return DetachedTimedOut()
        except (InvalidMessage, ValueError, TypeError, msgpack.UnpackException) as exc:
            raise StateDirError(self._unreadable(f"journal entry {seq} ({kind}) cannot be "
                                                 f"read: {exc}")) from None
        raise StateDirError(self._unreadable(f"journal entry {seq} is of an unknown kind "
                                             f"{kind!r}"))

    # -- writing -------------------------------------------------------------------------------
    def record(self, event: Event) -> None:
        """Buffer ``event`` for the next ``commit``."""
        self._pending.append(self._row(event))

    def worker_joined(self, address: str) -> None:
        self._pending.append((_WORKER_JOINED, address, None))

    def worker_left(self, address: str) -> None:
        self._pending.append((_WORKER_LEFT, address, None))

    def _row(self, event: Event) -> tuple[str, str, bytes | None]:
        if isinstance(event, ClientSent):
            message = event.message
            self.tasks_written += len(getattr(message, "tasks", ())) or 1
            return _SENT, event.client, _encode(message)
        if isinstance(event, ClientConnected):
            return _CONNECTED, event.client, msgpack.packb(sorted(event.features))
        if isinstance(event, ClientDisconnected):
            return _DISCONNECTED, event.client, None
        if isinstance(event, TaskFailed):
            return _FAILED, event.key, _encode(event.error)
        if isinstance(event, Recovering):
            return _RECOVERING, "", None
        if isinstance(event, DetachedTimedOut):
            return _DETACHED_TIMED_OUT, "", None
        raise TypeError(f"{type(event).__name__} is not kept in the journal")

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def commit(self) -> None:
        """Write what was recorded since the last commit: one transaction, one fsync."""
        if not self._pending or self._db is None:
            return
        rows = self._pending
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO journal (kind, subject, body) VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise  # (the rows stay pending: the next commit writes them)
        self._pending = []
        self.rows += len(rows)
        self.commits += 1

    def rewrite(self, events: Iterable[Event], workers: Iterable[str]) -> None:
        """Replace the journal with ``events`` (the state as it is now) and the workers
        registered now, in one transaction: a crash leaves the old journal or the new one."""
        assert self._db is not None
        self.commit()
        self.tasks_written = 0
        rows = [self._row(event) for event in events]
        rows += [(_WORKER_JOINED, address, None) for address in workers]
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute("DELETE FROM journal")
            db.executemany("INSERT INTO journal (kind, subject, body) VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.rows = len(rows)
        self.tasks_written = 0
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        if self._db is not None:
            try:
                self.commit()
            finally:
                self._db.close()
                self._db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _encode(message: Message) -> bytes:
    return frames_to_bytes(encode_batch([message]))


def _message(body: Any) -> Message:
    """The one message framed in ``body`` (as ``_encode`` wrote it)."""
    data = memoryview(body)
    if len(data) < 8:
        raise InvalidMessage("an entry too short to hold a message")
    (count,) = struct.unpack_from("<Q", data)
    if not 1 <= count <= 1_000_000 or len(data) < 8 * (count + 1):
        raise InvalidMessage("an entry whose frame table is damaged")
    sizes = struct.unpack_from(f"<{count}Q", data, 8)
    frames = []
    offset = 8 * (count + 1)
    for size in sizes:
        frames.append(bytes(data[offset:offset + size]))
        offset += size
    if offset != len(data):
        raise InvalidMessage("an entry whose frames do not add up to its length")
    messages = decode_batch(frames)
    if len(messages) != 1:
        raise InvalidMessage(f"an entry holds {len(messages)} messages, not one")
    return messages[0]


def chunks(events: list[Event], size: int = 1000) -> Iterator[list[Event]]:
    for start in range(0, len(events), size):
        yield events[start:start + size]
