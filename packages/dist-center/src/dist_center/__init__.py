"""dist-center: tracks every task, key and worker of a cluster and decides where work runs."""
__version__ = "0.1.0"
