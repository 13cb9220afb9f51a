"""The client's core: what it knows of its keys (``keystate``, ``state``), the one way to wait
for keys to settle (``waiters``), and the coroutines on the I/O loop that do every operation
(``client``). ``Executor`` and ``AsyncExecutor`` are facades over it."""
