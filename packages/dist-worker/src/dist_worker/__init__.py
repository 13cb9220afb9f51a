"""dist-worker: runs tasks in a thread pool, holds their results, serves them to peers."""
__version__ = "0.1.0"
