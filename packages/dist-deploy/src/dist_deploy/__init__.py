"""dist-deploy: start dist clusters where the machines are, and scale them with the load.

``LocalCluster`` (processes on this machine), ``SSHCluster`` (hosts reached with the system
``ssh``), ``SLURMCluster`` (``sbatch`` jobs), all with ``scale(n)``, ``adapt(...)``,
``close()`` and the context manager; ``Executor(cluster)`` connects to any of them.

``Cluster``, ``Adaptive`` and ``LocalCluster`` are dist-client's (``Executor()``'s local
cluster is one of these clusters, and dist-client cannot depend on this package); they are
here too so that a cluster manager needs one import.
"""
from dist_client.adaptive import Adaptive, AdaptivePolicy, Decision
from dist_client.cluster import Cluster, ClusterLike
from dist_client.local import LocalCluster

from .slurm import SLURMCluster
from .ssh import SSHCluster

__version__ = "0.1.0"
__all__ = ["Adaptive", "AdaptivePolicy", "Cluster", "ClusterLike", "Decision", "LocalCluster",
           "SLURMCluster", "SSHCluster"]
