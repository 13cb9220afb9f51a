"""The client's core.

``keystate``: what is known of one key, and the hook that announces its settling. ``waiters``:
the one way to wait for keys, for threads and event loops. ``state``: the pure decisions about
keys, reference counts and what the center is told. ``loop``: the I/O thread. ``client``: the
connection and the bridge between a caller and the I/O loop. ``submitting``: a submit's or a
map's tasks built and queued. ``cancelling``: futures cancelled and retried. ``operations``:
every operation that talks to the cluster, once, as a coroutine. ``Executor`` and
``AsyncExecutor`` are facades over it."""
