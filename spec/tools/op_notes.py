"""What each op is for and what answers it: the prose of the generated catalogue.

The fields, types and directions come from the code; this is the one part written by hand.
An op missing here is still catalogued, with its class docstring (if any) as its purpose.
"""
from __future__ import annotations

# op -> (purpose, reply)
OP_NOTES: dict[str, tuple[str, str]] = {
    "hello": ("Opens every connection: the protocol versions the initiator speaks, its role "
              "(`client`, `worker` or `peer`, a worker fetching from another worker) and, when "
              "it may have to authenticate, a 32-byte random nonce.",
              "`welcome`, or `error` (`version-mismatch`, `auth-failed`, `handshake-failed`)"),
    "welcome": ("The version chosen (the highest both ranges include). With `auth`, the "
                "acceptor's nonce and its proof that it knows the token.",
                "`authenticate` when `auth` is true; nothing otherwise"),
    "authenticate": ("The initiator's proof that it knows the token.",
                     "`authenticated`, or `error` `auth-failed`"),
    "authenticated": ("The handshake is over; the full limits apply from the next batch.", "—"),
    "error": ("The sender found a protocol violation (or gives up); it closes the connection "
              "after this message. `code` is one of the error codes below; `message` is for "
              "people.", "— (the connection closes)"),
    "submit": ("Tasks to run. A task whose key the center already knows is not run again. "
               "Every task of the message is wanted by this client unless `wanted` lists the "
               "ones it wants (the rest are only inputs; keys of `wanted` that are not tasks of "
               "this message are ignored). `small_values: true` asks that, from "
               "now on, small results come within `key-in-memory`, in the first of "
               "`small_values_serializers` the worker sent them in (feature "
               "`small-values-msgpack`: `[\"msgpack\"]` for a client in any language; "
               "absent, `pickle`, for clients that read it). A graph may come in several "
               "submits (feature "
               "`graph-parts`: see Graphs in parts).",
               "for each wanted key, when it settles: `key-in-memory`, `task-erred`, "
               "`key-lost` or `key-cancelled`"),
    "release": ("The client no longer wants these keys; the center forgets each one that no "
                "client and no waiting task needs, and the workers free its data.", "—"),
    "cancel": ("Like `release`, and the client is told each key is cancelled: without "
               "`pending_only`, every key it names is answered `key-cancelled`, whatever its "
               "state -- also a key the client did not want or the center does not know, and "
               "one already settled, whose `key-in-memory` or `task-erred` is then followed "
               "by `key-cancelled` (the key is let go all the same). With "
               "`pending_only` only the keys whose tasks have not started (waiting, queued, "
               "without a worker, or released) are cancelled and answered; running and "
               "finished tasks go on (a client's `shutdown(cancel_futures=True)`). A task "
               "sent ahead of inputs that have not finished (Dispatch ahead) has not "
               "started. The center asks for the other tasks it has sent to a worker back "
               "(`steal-request`): each the worker gives up, having not started it, is "
               "cancelled and answered then; each it keeps runs to the end and settles as "
               "usual; each still asked for when the worker leaves is cancelled and "
               "answered then. With `force` (feature "
               "`cancel-force`) the keys are cancelled for every holder, not only this "
               "client: every client holding one of them, or a task that reads one (and so "
               "on down the graph), is sent `key-cancelled` for it, and datasets and "
               "fire-and-forget let go of them. Without either, and with feature "
               "`cancel-dependents` agreed on the connection, a key that no holder but this "
               "client wants goes with the tasks reading it, directly or through other tasks, "
               "that no other holder wants: the client lets go of those it holds and is sent "
               "`key-cancelled` for each, after the answers for the keys it named (each key "
               "answered once). A key or task another client, a dataset or fire-and-forget "
               "holds goes on, and so does what it reads, as with dask's `cancel`.",
               "`key-cancelled` for each key cancelled"),
    "who-has": ("Which workers hold these keys (the first step of a gather).",
                "`who-has-reply` with the same `id`"),
    "who-has-reply": ("Worker addresses per key; an empty list when no worker holds it.", "—"),
    "scatter-plan": ("Where to put data the client is about to push (`keys` maps each key to "
                     "its size in bytes); `broadcast` asks for every worker, `workers` (names or "
                     "addresses) restricts the choice to those. A key as large as a worker's "
                     "`memory_limit` is planned only for workers with a larger one (or none), "
                     "when there are any; otherwise for any, and a client should not send it. "
                     "The keys become wanted by this client, unless the reply is empty: then "
                     "nothing changed. With `timeout` (feature `waits`), a plan no worker can "
                     "take now is not answered empty at once: the center answers when a "
                     "worker it may use registers (or resumes), or empty after `timeout` "
                     "seconds (see Waits).",
                     "`scatter-plan-reply` with the same `id`"),
    "scatter-plan-reply": ("Target workers per key; the client sends them `put-data`. Empty "
                           "when no worker is available.", "—"),
    "scatter-done": ("After `put-data` to the workers of a `scatter-plan`: which workers "
                     "confirmed storing each key (`data-stored`), and the sizes. The center "
                     "records them at once, as the workers' own reports would, so that this "
                     "client's next messages find the data in place. Optional: without it, the "
                     "center learns from the workers.", "— (`key-in-memory` for each key)"),
    "cluster-info": ("Ask for the workers and their state. With `min_workers` (feature "
                     "`waits`), the center answers once at least that many workers are "
                     "registered, or after `timeout` seconds (nil: no limit) with the "
                     "workers there are then (see Waits).",
                     "`cluster-info-reply` with the same `id`"),
    "cluster-info-reply": ("One map per worker, with the keys and types PROTOCOL.md, Worker "
                           "maps, lists: `address`, `name`, `nthreads`, `memory_limit`, "
                           "`resources`, `environment`, `nanny`, and the dynamic `status`, "
                           "`cannot_spill`, `processing`, `processing_keys`, `ahead`, "
                           "`keys`, `nbytes`, `metrics`. With feature `center-started`, "
                           "`started`: when the center process started (seconds since the "
                           "epoch).", "—"),
    "replicate": ("Keep `n` copies of each key in memory on distinct workers (with "
                  "`workers`, feature `replicate-workers`: on distinct workers of those "
                  "addresses, where only copies count; `n` at most their number). With `id` "
                  "(feature `waits`), the center answers when they exist: `n` counts at most "
                  "the workers registered, and fewer if workers leave meanwhile; `timeout` "
                  "(nil: no limit) bounds the wait (see Waits).",
                  "— ; with `id`: `replicate-reply` with the same `id`"),
    "replicate-reply": ("How a `replicate` with an `id` ended: `ok` once every key is on `n` "
                        "workers (`n` as the center counted it); `gone` as soon as one of "
                        "the keys (`keys`) is no longer in memory at the center (released, "
                        "lost, or being computed again after its data was lost); `timeout` "
                        "when `timeout` passed first (`keys`: those with fewer copies).",
                        "—"),
    "restart": ("Forget every task and restart every worker; every client's keys are "
                "cancelled. Published datasets are forgotten too. Coordination primitives "
                "stay (a lock held stays held), but the keys their values refer to are gone: "
                "a client that gets such a value is sent `key-lost` for them.",
                "`restart-reply` once the workers have registered again (or "
                "after `timeout` seconds)"),
    "restart-workers": ("Restart the workers named (addresses or names) through their "
                        "nannies, forgetting nothing else (see Restarting some workers); a "
                        "worker unknown or without a nanny: none is restarted.",
                        "`restart-workers-reply` once each is registered again, after "
                        "`timeout` seconds, or at once with `error`"),
    "restart-workers-reply": ("`status`: each worker as the request named it, `OK` (a "
                              "worker of its nanny registered again) or `timed out`; empty, "
                              "with `error`, when nothing was restarted.", "—"),
    "restart-reply": ("How many workers registered again, and (feature `restart-expected`) "
                      "how many the center waited for, those registered when the restart "
                      "began: `workers` below `expected` means the timeout passed first. A "
                      "`timeout` of 0 asks for the answer at once, the workers still "
                      "restarting.", "—"),
    "rebalance": ("Move data between workers (those of `workers`, by name or address; "
                  "absent, every running worker) until each holds about as many bytes, as the "
                  "center counts them from the sizes workers reported (feature `rebalance`). "
                  "Only keys of `keys` move, when given. See Rebalancing.",
                  "`rebalance-reply` with the same `id`, once every move is done or failed"),
    "rebalance-reply": ("The keys that moved, and of the keys `rebalance` named, those that did "
                        "not (not in memory, or their move failed); `error` when nothing was "
                        "done (a worker named that the center does not know).", "—"),
    "upload-file": ("Keep `file` for every worker that registers from now on (feature "
                    "`uploads`): the center sends the files it keeps in each "
                    "`worker-registered`. A file of the same `name` is replaced. The center "
                    "keeps at most 100 files and 64 MiB in all, never reads them, keeps them "
                    "across a `restart` and, with a state directory, across its own restart. "
                    "The workers registered already are the client's to reach (a Python "
                    "client runs the installation on each). See Uploaded files.",
                    "`upload-file-reply` with the same `id`"),
    "upload-file-reply": ("Whether the center kept the file: `error` says why not (a name with "
                          "a folder, more files or bytes than it keeps).", "—"),
    "register-plugin": ("Keep `plugin` for every worker that registers from now on (feature "
                        "`worker-plugins`): the center sends the plugins it keeps in each "
                        "`worker-registered`. A plugin of the same `name` is replaced, unless "
                        "`idempotent`, which leaves it. The center keeps at most 100 plugins "
                        "and 64 MiB in all, never unpickles them, keeps them across a "
                        "`restart` and, with a state directory, across its own restart. The "
                        "workers registered already are the client's to reach (a Python "
                        "client runs the set-up on each). See Worker plugins.",
                        "`register-plugin-reply` with the same `id`"),
    "register-plugin-reply": ("Whether the center kept the plugin: `error` says why not (more "
                              "plugins or bytes than it keeps); `kept` is false when "
                              "`idempotent` left a plugin of that name.", "—"),
    "unregister-plugin": ("Forget the plugin `name` (feature `worker-plugins`): workers "
                          "registering from now on are not given it. Tearing it down on the "
                          "workers registered already is the client's to do.",
                          "`unregister-plugin-reply` with the same `id`"),
    "unregister-plugin-reply": ("`error` when the center keeps no plugin of that name.", "—"),
    "session": ("Which session this connection is (feature `sessions`), sent first on the "
                "connection: a new one without `resume`; after losing the center, `resume` "
                "with the id `session-reply` gave before, and in `keys` the keys the client "
                "holds. Messages behind it on the connection belong to the session it names. "
                "See Sessions.", "`session-reply` with the same `id`"),
    "session-reply": ("The session's id (`client`), whether the center's state is `durable` "
                      "(kept across a restart of its own, so a session can be resumed then), "
                      "whether this connection `resumed` the session named in `resume` -- "
                      "then the center wants the same keys for it as before, and sends "
                      "`key-in-memory`, `task-erred` or `key-lost` at once for each that "
                      "settled -- and the keys of `session.keys` it does not know for the "
                      "session (`unknown`).", "—"),
    "story": ("A debugging aid: what happened to these keys. From a client, the center answers "
              "with its own log entries and those of every worker, which it asks with the same "
              "op (a worker that leaves meanwhile is left out). Entries are what the bounded "
              "logs still hold.", "`story-reply` with the same `id`"),
    "story-reply": ("Log entries about the keys, each a map: `key`, `start` (the state the "
                    "key left), `finish` (the one it entered), `stimulus_id` (the event that "
                    "caused it), `time` (the host's clock, seconds since the epoch) and "
                    "`worker` (the worker's address, empty for the center's own entries); "
                    "ordered by `time`, each host's entries in their own order. States are "
                    "the sender's own (the center's `waiting`, `processing`, `memory`, ...; a "
                    "worker's `fetch`, `flight`, `executing`, ...), for people to read, not "
                    "for programs to act on.", "—"),
    "task-stream": ("The task runs the center recorded, for profiling: it keeps the newest "
                    "5000 (after a client releases tens of thousands of tasks, only those of "
                    "tasks still known). `after` (a cursor from an earlier reply), `start`, "
                    "`stop` (seconds since the epoch: runs that started at or after `start` "
                    "and stopped at or before `stop`) and `count` (at most the newest that "
                    "many) narrow them down.", "`task-stream-reply` with the same `id`"),
    "task-stream-reply": ("The runs, oldest first, each a map: `key`, `worker` (the address "
                          "of the worker that ran it), `status` (`OK`, or `error` for a run "
                          "that raised: its `nbytes` is 0), `nbytes` (the "
                          "result's size) and `startstops`, a list of maps: `action` "
                          "(`transfer`), `start`, `stop` and `source` for each input fetched "
                          "from a peer for the run (the worker's `transfers`), then `action` "
                          "(`compute`), `start` and `stop` (the worker's clock, seconds since "
                          "the epoch). `cursor` counts the runs recorded ever: passed as "
                          "`after`, it asks for those recorded after this reply.", "—"),
    "worker-query": ("What the workers are doing now, asked by the center, for a client, of "
                     "every registered worker that announced `worker-query` (or of those whose "
                     "addresses `workers` lists; names are not matched): `executing`, the keys "
                     "whose call runs now (of `keys`, or all), a cancelled or released key's "
                     "among them until its call returns (a call is not interrupted: its thread "
                     "stays busy); `call-stack`, the stack of each such call's thread; `logs`, "
                     "the worker's newest `n` log lines (absent: every line it keeps). "
                     "`center-logs` asks the center for its own, and no worker. Another `what` "
                     "is answered with nil from each worker asked.",
                     "`worker-query-reply` with the same `id`, once every worker asked answered "
                     "or left"),
    "worker-query-reply": ("The answers by worker address (`\"\"` for the center's own): for "
                           "`executing` a list of keys, for `call-stack` a map of key to the "
                           "lines of its stack (outermost first), for `logs` and `center-logs` "
                           "a list of `[level, line]`, oldest first. A worker that left before "
                           "it answered is missing; none asked (no such address): empty.",
                           "—"),
    "adaptive-target": ("What the center would scale to: the threads its work needs (the "
                        "tasks queued, without a worker and running, each counted at its "
                        "kind's average duration, 0.5 s before any ran, divided by "
                        "`target_duration`, at most one thread per task) and the workers that "
                        "makes at the current workers' average size; twice the workers when "
                        "their data fills more than 60% of their memory limits. Below the "
                        "current count it names the workers safe to retire: idle ones holding "
                        "the least data, always keeping one while any data is held. Advisory: "
                        "nothing changes.", "`adaptive-target-reply` with the same `id`"),
    "adaptive-target-reply": ("`target` workers wanted (`workers` are registered now), "
                              "`threads` wanted in all, `retire` the names of the workers to "
                              "retire to get down to `target`.", "—"),
    "retire-workers": ("Retire workers gracefully, by name or address: they get no new tasks "
                       "and give back those they have not started; once their running tasks "
                       "finished, every key only they hold is copied to other workers "
                       "(`acquire-replicas`), then with `close` they are sent `close-worker` "
                       "and are retired when they unregister (without `close`, or a worker "
                       "without the feature, as soon as nothing is left only on them; it "
                       "stays registered but unused until stopped). A worker fails to retire "
                       "when it is unknown, leaves first, or when no other running worker can "
                       "take its data (it then runs again).", "`retire-workers-reply` with "
                       "the same `id`, once every named worker is retired or failed"),
    "retire-workers-reply": ("`retired`: address -> name of each worker retired; `failed`: "
                             "each name or address that was not, and why.", "—"),
    "close-worker": ("Close for good: unregister and exit (a nanny exits too). Sent once "
                     "retirement left nothing only on this worker.", "—"),
    "key-in-memory": ("A wanted key's value is held by a worker. `workers` lists the holders, "
                      "so a gather may skip `who-has`. `value`, for clients that asked with "
                      "`small_values`, is the value itself when the worker sent it along in a "
                      "form the client named (a `pickle` or, with `small-values-msgpack`, a "
                      "`msgpack` payload of at most 1 KiB; absent otherwise: gather it); the "
                      "center keeps no copy, so a later gather of the key goes to the "
                      "workers. `type_pickled` (feature `result-types`): the value's class "
                      "as the worker sent it, opaque to the center.", "—"),
    "key-lost": ("A wanted key's value is gone and cannot be recomputed: scattered data "
                 "whose workers died, and every task reading it, directly or not, that had "
                 "not run yet (its `message` names the lost input); an actor lost with its "
                 "worker (`ActorLost:`); a key of `want-keys` or of a coordination value "
                 "that the center no longer knows.", "—"),
    "key-cancelled": ("A wanted key was cancelled: by the client's `cancel` of it or (feature "
                      "`cancel-dependents`) of a key it reads, by another client's `cancel` "
                      "with `force`, or by a restart. A client settles the key as cancelled "
                      "whether or not it named it.", "—"),
    "restarting-for-memory": ("A worker past its memory's *terminate* threshold, about to exit "
                              "for its nanny to start it again, names the values it blames "
                              "(`keys`, with their bytes) and its resident memory. The center "
                              "counts the restart as a death of those keys' tasks (PROTOCOL.md, "
                              "Restarts for memory). Sent only to centers that announced the "
                              "feature `memory-restart`.", "—"),
    "worker-alive": ("A worker's nanny says the worker process it runs lives and ran since it "
                     "last said so (`address`: the worker as it registered), about once a "
                     "second, as the first and every message of a connection of its own. The "
                     "center keeps that worker past its heartbeat timeout while such word keeps "
                     "coming, up to sixty timeouts of silence (PROTOCOL.md, Workers a nanny "
                     "vouches for). Sent only to centers that announced the feature "
                     "`nanny-vouch`.", "—"),
    "worker-terminated": ("A worker stopped by a SIGTERM its nanny did not send, about to exit "
                          "without unregistering, names the tasks that may have sent it "
                          "(`keys`): those running then, and the last to end if it ended "
                          "within a heartbeat interval before. The center counts the death "
                          "against each of them (PROTOCOL.md, Workers a task terminates). "
                          "Sent only to centers that announced the feature "
                          "`task-terminated`.", "—"),
    "worker-list": ("The workers registered when the client's connection opened (and "
                    "after a reconnection): one map each, as `cluster-info-reply` has them "
                    "without their dynamic fields (PROTOCOL.md, Worker maps). Sent only to "
                    "clients that announced the feature `worker-events` (PROTOCOL.md, Worker "
                    "events).", "—"),
    "worker-added": ("A worker registered (feature `worker-events`): its map, as in "
                     "`worker-list`.", "—"),
    "worker-removed": ("A worker left: unregistered, went silent, closed, or registered "
                       "again (then `worker-added` follows). Feature `worker-events`.", "—"),
    "worker-status": ("A worker cannot spill its values to its disk (`cannot_spill`: why, as "
                      "its heartbeat's `spill_error` said), or can again (`cannot_spill` "
                      "empty): sent once each way, and for each such worker when the client "
                      "connects. Feature `worker-status` (PROTOCOL.md, Worker events).", "—"),
    "key-recomputing": ("Every copy of a wanted key's data was lost and the center computes it "
                        "again from its lineage: the key is pending until the next "
                        "`key-in-memory` (or `task-erred`, `key-lost`). Sent only to clients "
                        "that announced the feature.", "—"),
    "task-erred": ("A task failed: the exception's type name, message and traceback as text "
                   "(and pickled, for Python clients). Tasks that depend on it err with the "
                   "same error. From the center to each client that wants the key. "
                   "`start` and `stop` (feature `task-stream`): when the failed run started "
                   "and stopped, on the worker's clock, for the center's task stream; absent "
                   "when the task's function never ran; `transfers` as in `task-finished`. "
                   "The center keeps these three to itself: clients are sent none of them "
                   "(`transfers` only as its default, an empty list, which the canonical "
                   "encoding writes out).",
                   "—"),
    "register-worker": ("A worker joins: the address it serves data on and its threads; "
                        "`keys` lists data it still holds (registering again after a lost "
                        "connection).", "`worker-registered`"),
    "worker-registered": ("The center accepts the worker and says how often to send "
                          "heartbeats; `uploads` (feature `uploads`) are the files clients "
                          "uploaded, which the worker installs before it takes a task; "
                          "`plugins` (feature `worker-plugins`) the worker plugins, which it "
                          "sets up after the uploads, before it takes a task.", "—"),
    "task-finished": ("A task's value is in the worker's memory; `value` carries it too when it "
                      "pickles to at most 1 KiB, for the center to pass on to clients that asked "
                      "for small values; `value_msgpack` (feature `small-values-msgpack`) "
                      "carries it as msgpack as well, when `compute-task` asked for it "
                      "(`value_msgpack`) and msgpack can in at most 1 KiB. `transfers` (feature "
                      "`task-stream`): the task's inputs the worker fetched from peers for "
                      "this run, each `source` (the peer's address), `start` and `stop` (the "
                      "worker's clock), for the center's task stream; empty when none. "
                      "`type_pickled` (feature `result-types`): the value's class, pickled by "
                      "reference (by value when no module defines it and it pickles to at "
                      "most 1 KiB; absent otherwise), kept by the center with the key for "
                      "`key-in-memory`, never unpickled there.",
                      "—"),
    "keys-added": ("Data arrived by `put-data` or a replica fetch: keys and sizes.", "—"),
    "missing-data": ("A worker could not get `key` from `worker`, which was said to hold it.",
                     "—"),
    "heartbeat": ("The worker is alive; free-form metrics (a true `paused` stops new work; "
                  "a `spill_error` string says why it cannot spill to its disk).",
                  "—"),
    "unregister": ("The worker is leaving on purpose.", "— (the connection closes)"),
    "compute-task": ("Run a task. `who_has` says where each dependency's value is, so the "
                     "worker fetches what it lacks straight from those peers. Inputs named "
                     "in `ahead` (feature `dispatch-ahead`) are being computed on this "
                     "worker: it waits for them and fetches nothing (see Dispatch ahead). "
                     "`value_msgpack` (feature `small-values-msgpack`): a client that "
                     "wants the key reads small values as msgpack, so `task-finished` is "
                     "to carry a small value in that form too.",
                     "`task-finished` or `task-erred`"),
    "acquire-replicas": ("Fetch copies of these keys from the listed workers.",
                         "`keys-added` once they arrive"),
    "restart-worker": ("Restart the worker process (its nanny starts it again).", "—"),
    "free-keys": ("Drop these keys (data and tasks).", "—"),
    "steal-request": ("The center would move these tasks, assigned to this worker but perhaps "
                      "not started, to an idle worker, or cancel them if not started (`cancel` "
                      "with `pending_only`). The worker gives up each one that has "
                      "not started running (forgets it, as if freed) and keeps the rest.",
                      "`steal-reply`"),
    "steal-reply": ("`keys`: the tasks given up, which the center assigns elsewhere; `kept`: "
                    "those already running or done (their results follow as usual) or not "
                    "known here.", "—"),
    "get-data": ("Values of keys held by this worker, serialized with the first of "
                 "`serializers` that can represent each (`msgpack`, `pickle`, `bytes`; other "
                 "names are skipped; absent, nil or empty: `pickle`). A value that none "
                 "of the named serializers can represent (a Python object with only "
                 "`msgpack`, or only names the worker does not know) is not sent: `data` "
                 "names it in `errors`.",
                 "`data` with the same `id`"),
    "data": ("The values found; `missing` lists keys the worker does not hold, `errors` keys "
             "it could not serialize as asked.", "—"),
    "put-data": ("Store these values (a scatter, after `scatter-plan` named this worker for "
                 "them). Keys the center does not expect (neither planned by a `scatter-plan` nor "
                 "already in memory, then this is a copy) are freed again once the worker "
                 "reports them. The worker compares nothing: a key it holds already takes "
                 "the value sent, so a client MUST send only a key's own value (a copy), "
                 "never another value under a key in use.",
                 "`data-stored` with the same `id`"),
    "data-stored": ("The keys were stored; the worker reports them to the center with "
                    "`keys-added`.", "—"),
    "task-seceded": ("The task `key`, running here, gave its thread back while it waits "
                     "(typically on tasks it submitted itself): the center no longer counts it "
                     "against the worker's threads and may send the worker another task. The "
                     "task still runs here; its end is reported as usual. The worker takes a "
                     "thread back before the task goes on, without telling the center. Sent "
                     "only to a center that announced `secede`.", "—"),
    "fire-and-forget": ("Run these tasks (and what they need) to their end although this "
                        "client may release them: the center holds each until it is in memory, "
                        "erred or lost, then forgets it. Keys already ended or unknown are "
                        "ignored.", "—"),
    "retry": ("Run again the tasks of these keys that erred, and the inputs that erred before "
              "them (the cause of a dependent's error), with their specs' `retries` afresh; "
              "the client's futures of them are pending again. Keys this client does not "
              "want, or that did not err, are ignored.",
              "for each key when it settles again, as after `submit`: `key-in-memory`, "
              "`task-erred` or `key-lost`"),
    "task-spec": ("The spec of the task `key`, which this client wants, for the client to "
                  "run it again in its own process (to debug it). With `erred`, the spec of "
                  "the task where the key's error began: following erred inputs from the key "
                  "to one whose inputs did not err (the key itself when its own run raised).",
                  "`task-spec-reply` with the same `id`"),
    "task-spec-reply": ("`task`: the `TaskSpec` as the client (or another) submitted it, its "
                        "`args` naming its inputs by key reference; the client fetches their "
                        "values itself. Without `task`, `error` says why: the client does not "
                        "want `key`, `key` is scattered data (no task), or, with `erred`, "
                        "it has not erred.", "—"),
    "want-keys": ("The client holds these keys from now on, though it did not submit them "
                  "(it learnt them from `get-dataset`); it releases them with `release`.",
                  "for each key, as for a submitted one: `key-in-memory`, `task-erred` or "
                  "`key-lost` when it settles (at once if it has); `key-lost` for a key the "
                  "center no longer knows"),
    "publish-dataset": ("Keep `data` under `name`, and hold `keys` (the keys `data` refers to, "
                        "which the center must know) until the dataset is unpublished, however "
                        "clients release them. `data` is opaque to the center: a `msgpack` "
                        "payload (key references as extension type 1) any client can read, or "
                        "a `pickle` for Python clients. A name in use fails unless `override`.",
                        "`dataset-reply` with the same `id` (its error field empty on success)"),
    "get-dataset": ("The keys and data published under `name`. To hold the keys, the client "
                    "then sends `want-keys` (until then the dataset alone holds them).",
                    "`dataset-reply` with the keys and data, or with an error (no such dataset)"),
    "list-datasets": ("The names of the published datasets.",
                      "`dataset-reply` with `names`, sorted"),
    "unpublish-dataset": ("Forget the dataset `name`; its keys go unless a client or a task "
                          "still holds them.",
                          "`dataset-reply` (with an error when no such dataset)"),
    "dataset-reply": ("The answer to a dataset request. A non-empty `error` says, for people, "
                      "why it failed; `keys`/`data` answer `get-dataset`, `names` "
                      "`list-datasets`.", "—"),
    "coordinate": ("An action on a named coordination primitive held by the center (see "
                   "[Coordination primitives](#coordination-primitives) for the kinds and "
                   "their actions). `keys` names the keys the `value` refers to, which the "
                   "center holds while the value is held. A waiting action is answered when it "
                   "can be done, or with status `timeout` after `timeout` seconds (0: do not "
                   "wait; absent: wait as long as it takes).",
                   "`coordinate-reply` with the same `id`"),
    "coordinate-reply": ("The outcome of a `coordinate`: `ok` (with the `value` got, the "
                         "`keys` it refers to -- now wanted by this client, whose "
                         "`key-in-memory` and other news follow -- and a `count` for queries), "
                         "`timeout`, or `error` with what was wrong (an unknown action, a "
                         "lease not held, unknown keys).", "—"),
    "published": ("A message published on a topic this client subscribed to, in the order "
                  "the center received them.", "—"),
    "actor-call": ("Call the method `name` of the actor whose key is `key`, with `args` "
                   "(`[args, kwargs]`, as task arguments), or read its attribute `name` when "
                   "`args` is absent. Sent by the caller straight to the worker hosting the "
                   "actor (the address in the actor's value, or `who-has`). Calls on one "
                   "connection reach the actor in order. `serializers` (feature "
                   "`actor-serializers`) names what the caller reads, as in `get-data`: "
                   "`[\"msgpack\"]` for a caller in any language; absent, the value comes "
                   "as `pickle`.",
                   "`actor-result` with the same `id`"),
    "actor-result": ("`ok` with the call's return value (a payload in the first of the "
                     "call's `serializers` that can represent it; `pickle` when it named "
                     "none), `error` with the exception as `task-erred` carries it (the "
                     "pickled `exception` only to callers that announced "
                     "`pickled-exceptions`; a value none of the `serializers` can represent "
                     "is `exception_type` `SerializationError`), or `lost`: no such actor "
                     "here (released, or its worker restarted).", "—"),
}
