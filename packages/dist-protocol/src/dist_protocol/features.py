"""Protocol features: optional ops and fields, negotiated in the handshake. No I/O.

The protocol version says what every peer of that version understands. What is optional within
a version -- an op such as ``scatter-done``, later fields -- is a *feature*: each side lists the
features it implements in its ``hello``/``welcome``, and a connection uses those that both
listed. A sender never sends an op or a field of a feature the connection did not agree (the
connection raises ``LocalProtocolError``), so a newer peer keeps working with an older one,
which never announced the feature and would reject what belongs to it.

A feature, once published, keeps its meaning; a change of meaning is a new feature name.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from . import compression

# name -> what a peer that announces it implements. spec/ is generated from this.
FEATURES: dict[str, str] = {
    "scatter-done": "the center takes `scatter-done` from clients (the keys a scatter stored "
                    "and where) and records them at once",
    "key-recomputing": "the client takes `key-recomputing`: a key it wants lost its data and "
                       "is being computed again from its lineage",
    "cancel-pending-only": "the center takes `cancel` with `pending_only`: it cancels only the "
                           "tasks that have not started and answers `key-cancelled` for those",
    "pickled-exceptions": "reads the pickled exception in `task-erred` (`exception`): Python "
                          "clients, and the center, which passes it on; peers that do not "
                          "announce it get the error as text only",
    "compression": "payloads may carry `compression`: frames sent as lz4 blocks (see "
                   "Payloads); a peer announces it only where it can decompress them",
    "compression-zstd": "payloads may carry `compression` with `zstd` frames (see Payloads); "
                        "a peer announces it only where it can decompress them",
    "sessions": "the center takes `session` from clients and answers `session-reply`: the "
                "id of the client's session, and whether the center keeps its state across a "
                "restart of its own, so that a client reconnecting after it resumes the session "
                "and its pending keys complete",
    "story": "the peer answers `story` with `story-reply`: a key's history (the center for "
             "clients, gathering its workers'; a worker for the center)",
    "task-stream": "the center takes `task-stream` and answers `task-stream-reply`: the "
                   "task runs it recorded most recently (key, worker, status, start and stop); "
                   "a worker's `task-erred` carries the failed run's `start` and `stop`, and "
                   "`task-finished` and `task-erred` the inputs fetched for the run "
                   "(`transfers`)",
    "secede": "the center takes `task-seceded`: a running task gave its thread back while it "
              "waits, so the worker may be sent another task in its place",
    "datasets": "the center keeps named datasets (`publish-dataset`, `get-dataset`, "
                "`list-datasets`, `unpublish-dataset`, answered by `dataset-reply`) and takes "
                "`want-keys`",
    "fire-and-forget": "the center takes `fire-and-forget`: it runs the tasks to their end "
                       "though no client wants them",
    "retry": "the center takes `retry`: erred tasks a client wants run again",
    "retire-workers": "the center takes `adaptive-target` and `retire-workers` from clients "
                      "(what it would scale to; graceful retirement); a worker takes "
                      "`close-worker`",
    "coordination": "the center holds named queues, variables, locks, semaphores, events and "
                    "topics: `coordinate` / `coordinate-reply`, `published`",
    "event-log": "the center keeps event logs (`coordinate` of kind `log`: `append`, "
                 "`read`, `topics`, `subscribe`, `unsubscribe`), a bounded number of entries "
                 "per topic; `coordinate-reply.values` and `published.kind`",
    "worker-query": "the peer answers `worker-query` with `worker-query-reply` (the center "
                    "for clients, gathering its workers' answers; a worker for the center): "
                    "the keys running now, their threads' stacks, recent log lines",
    "actors": "actors: tasks with `actor` set keep their object on the worker, which answers "
              "`actor-call` with `actor-result`",
    "dispatch-ahead": "the worker takes `compute-task` with `ahead`: a task sent before the "
                      "inputs it names there, which this worker is computing, have finished; it "
                      "waits for them here and starts once they are done (PROTOCOL.md, "
                      "Dispatch ahead)",
    "graph-parts": "the center takes `submit` with `graph` and `more`: a graph sent in "
                   "several submits, whose earlier parts' tasks are kept, wanted or not, until "
                   "its last part has been handled (PROTOCOL.md, Graphs in parts)",
    "graph-parts-run": "the center runs the tasks of a `submit` with `more` that are wanted, "
                       "and their inputs, as that part arrives, not once the last part has "
                       "come; none of a part's tasks is forgotten before the last part "
                       "(PROTOCOL.md, Graphs in parts)",
    "actor-serializers": "the worker takes `actor-call` with `serializers`: it sends the "
                         "call's value in the first of them that can represent it (`msgpack` "
                         "for callers in any language), or answers status `error` with "
                         "`exception_type` `SerializationError` when none can",
    "small-values-msgpack": "small values as msgpack, for clients in any language: a worker's "
                            "`task-finished` carries `value_msgpack` too when `compute-task` "
                            "asks (`value_msgpack`), and the center takes "
                            "`submit` with `small_values_serializers` and passes each such "
                            "client the first form it names that the worker sent (PROTOCOL.md, "
                            "Task lifecycle)",
    "cancel-force": "the center takes `cancel` with `force`: the keys are cancelled for every "
                    "client holding them, with every task that reads them, and each holder is "
                    "sent `key-cancelled`",
    "cancel-dependents": "announced by centers and clients: a client's `cancel` (without "
                         "`force` or `pending_only`) takes with it, as dask's, the tasks "
                         "reading a key that only this client holds, directly or not, that no "
                         "other client, dataset or fire-and-forget holds; the client is sent "
                         "`key-cancelled` for each it holds",
    "restart-expected": "the center's `restart-reply` carries `expected`, the workers it "
                        "waited for: fewer in `workers` means the restart's timeout passed "
                        "first",
    "rebalance": "the center takes `rebalance`: it moves data between workers until each "
                 "holds about as many bytes, each move a copy (`acquire-replicas`) then a free "
                 "of the original, and answers `rebalance-reply` (PROTOCOL.md, Rebalancing)",
    "uploads": "the center keeps files clients upload (`upload-file`, answered by "
               "`upload-file-reply`), bounded and replaced by name, and a worker takes them in "
               "`worker-registered` (`uploads`) and installs them before any task (PROTOCOL.md, "
               "Uploaded files)",
    "worker-plugins": "the center keeps worker plugins clients register (`register-plugin`, "
                      "`unregister-plugin`), bounded and replaced by name, and a worker takes "
                      "them in `worker-registered` (`plugins`) and sets them up before any task "
                      "(PROTOCOL.md, Worker plugins)",
    "waits": "the center answers waits when what they wait for holds, so that clients never "
             "ask again: `cluster-info` with `min_workers` once that many workers are "
             "registered, `scatter-plan` with `timeout` once a worker can take the data, "
             "`replicate` with `id` by `replicate-reply` once the copies exist; each after "
             "`timeout` seconds at the latest (PROTOCOL.md, Waits)",
    "task-specs": "the center takes `task-spec` and answers `task-spec-reply`: the spec of a "
                  "task the client wants, or of the erred task behind it where its error "
                  "began, for the client to run it again in its own process",
    "replicate-workers": "the center takes `replicate` with `workers`: the copies go only "
                         "on those workers, and only copies there count",
    "center-started": "the center's `cluster-info-reply` carries `started`: when the center "
                      "process started (seconds since the epoch)",
    "columns": "the peer reads column blocks in frame 0: a run of messages of one op sent as "
               "one array per field, with a value every message shares given once "
               "(PROTOCOL.md, Column blocks)",
    "frame-columns": "with `columns` agreed too, the peer reads frame columns: in a column "
                     "block or column list, a column of payloads that each name one frame, "
                     "of one serializer, sent as that serializer and the array of frame "
                     "indices (PROTOCOL.md, Column blocks)",
    "result-types": "`task-finished` and `key-in-memory` carry `type_pickled`: the class of "
                    "the task's value, pickled (by reference, or by value when no module "
                    "defines it and it pickles to at most 1 KiB; absent otherwise), which the "
                    "center keeps with the key and passes on to clients without unpickling "
                    "it, so that a Python client's future gives the class, not only its name",
    "pinned-tasks": "the center takes `submit` tasks with `pinned`: such a task runs only on "
                    "the worker its `workers` names, and when no registered worker is that one "
                    "(it left or died, before the task ran or while it ran, or never joined) "
                    "the task errs at once with `exception_type` `WorkerGone`, rather than "
                    "wait for a worker of that address to join",
    "worker-events": "the center sends the client `worker-list` (its registered workers) "
                     "when it connects, then `worker-added` and `worker-removed` as workers "
                     "register and leave, in order on the client's connection, so that the "
                     "client knows which worker runs which Python without asking "
                     "`cluster-info` (PROTOCOL.md, Worker events)",
    "memory-restart": "the center takes `restarting-for-memory`: a worker past its memory's "
                      "*terminate* threshold names the values it blames before it exits, and "
                      "the center counts that restart as a death of their tasks, so that a "
                      "value too large for the worker fails as `KilledWorker` after the "
                      "allowed deaths instead of being computed again and again "
                      "(PROTOCOL.md, Restarts for memory)",
    "pickled-values": "a `pickle` value put on the center for others to read says which "
                      "Python pickled it: `coordinate` and `publish-dataset` carry "
                      "`pickled_with` (the putter's pickle tag), which the center keeps with "
                      "the value and passes on in `coordinate-reply`, `published` and "
                      "`dataset-reply`, so that a reader on another Python minor version "
                      "refuses the code in it (PROTOCOL.md, Pickled code and Python versions)",
    "task-terminated": "the center takes `worker-terminated`: a worker stopped by a SIGTERM "
                       "its nanny did not send names, before it exits, the tasks running then "
                       "and the last to end within a heartbeat interval before, and the "
                       "center counts its death against each of them, also one whose value "
                       "is lost with it, so that a task that signals its own worker errs as "
                       "`KilledWorker` after the allowed deaths instead of stopping worker "
                       "after worker (PROTOCOL.md, Workers a task terminates)",
    "pickled-exception-python": "a `task-erred` with a pickled `exception` says which Python "
                                "pickled it (`pickled_with`, the worker's pickle tag; the "
                                "center passes it on), so that a client on another Python "
                                "minor version raises the error from its text rather than "
                                "build the code it holds (PROTOCOL.md, Pickled code and "
                                "Python versions)",
    "multi-lock": "the center holds dask's multi-locks: `coordinate` of kind `multi-lock` "
                  "(`acquire` with `names`, the locks, and `limit`, how many of them; "
                  "`release`; `count`), granted first come first served per lock "
                  "(PROTOCOL.md, Coordination primitives)",
    "restart-workers": "the center takes `restart-workers` and answers "
                       "`restart-workers-reply` (dask's `restart_workers`: some workers "
                       "restarted through their nannies); a worker's `register-worker` names "
                       "its nanny (`nanny`)",
    "reschedule": "the center takes `task-erred` with `reschedule`: the task raised "
                  "`Reschedule` (dask's), which is not an error: the center places it again, "
                  "as it would a new task, without counting a retry (PROTOCOL.md, Tasks "
                  "that ask to be rescheduled)",
    "nanny-vouch": "the center takes connections whose first message is `worker-alive`: a "
                   "worker's nanny says, about once a second, that the worker process lives "
                   "and ran since it last said so, and the center keeps a worker silent past "
                   "its heartbeat timeout while its nanny vouches for it (a task holding the "
                   "interpreter lock silences the whole process), up to sixty heartbeat "
                   "timeouts (PROTOCOL.md, Workers a nanny vouches for)",
    "worker-status": "the center sends the client `worker-status` when a worker cannot spill "
                     "its values to its disk (`cannot_spill`: why, from the worker's "
                     "heartbeat `spill_error`), and again when it can, so that the user "
                     "learns why tasks wait there (PROTOCOL.md, Worker events)",
}
# Features this process can only implement with an optional library.
_NEEDS = {"compression": lambda: compression.available("lz4"),
          "compression-zstd": lambda: compression.available("zstd")}

# Announce fewer features than this package implements, e.g. to behave as an older release
# would during a rolling upgrade: a comma-separated list of names (empty: none).
FEATURES_ENV = "DIST_PROTOCOL_FEATURES"


def default_features(environ: dict[str, str] | None = None) -> frozenset[str]:
    """What this process announces: every known feature, or those ``DIST_PROTOCOL_FEATURES``
    names (unknown names there are an error: a typo must not silently disable a feature)."""
    env = os.environ if environ is None else environ
    raw = env.get(FEATURES_ENV)
    if raw is None:
        return frozenset(name for name in FEATURES if name not in _NEEDS or _NEEDS[name]())
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(names - FEATURES.keys())
    if unknown:
        raise ValueError(f"{FEATURES_ENV} names unknown protocol features {unknown}; "
                         f"known: {sorted(FEATURES)}")
    return frozenset(name for name in names if name not in _NEEDS or _NEEDS[name]())


# Features a connecting side announces only where it asks for them by name: with them the
# center sends messages nobody asked for, which a connection that reads its replies in order
# (a tool, a test, a client written before them) would take for the reply it waits for.
ON_REQUEST = frozenset({"worker-events", "worker-status"})


def connecting_features(requested: Iterable[str] = (),
                        environ: dict[str, str] | None = None) -> frozenset[str]:
    """What a connecting side announces: ``default_features`` but those of ``ON_REQUEST``
    it did not name in ``requested``."""
    return default_features(environ) - (ON_REQUEST - frozenset(requested))


def agree(ours: Iterable[str], theirs: Iterable[str] | None) -> frozenset[str]:
    """The features a connection uses: those both sides announced. A peer that announced
    nothing (an older one, whose hello has no ``features``) agrees to none."""
    return frozenset(ours) & frozenset(theirs or ())
