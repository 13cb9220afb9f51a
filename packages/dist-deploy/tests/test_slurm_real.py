"""SLURMCluster against a real single-node SLURM (Debian's slurmctld, slurmd and munge, started
here as root with a configuration of the test's own, and stopped after). Skipped, with the
reason, where those are not installed or this is not root: ``.ci/run`` installs them."""
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from dist_client import Executor
from dist_deploy import SLURMCluster

pytestmark = pytest.mark.timeout(300)
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel")


def slow_inc(x):
    import time
    time.sleep(0.2)
    return x + 1


def _daemon(argv, log):
    return subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def free_ports(n: int) -> list[int]:
    """Ports free on every interface now (slurmctld and slurmd listen on all of them): fixed
    ones would collide with another run of this test on the same machine."""
    probes = [socket.socket() for _ in range(n)]
    try:
        for probe in probes:
            probe.bind(("", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@pytest.fixture
def slurm(tmp_path, wait_until):
    missing = [name for name in DAEMONS if shutil.which(name) is None
               and not Path(f"/usr/sbin/{name}").exists()]
    if missing:
        pytest.skip(f"needs SLURM and munge ({', '.join(missing)} missing: apt-get install "
                    "slurmctld slurmd slurm-client munge)")
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld, slurmd and munged needs root")
    host = socket.gethostname()
    conf = tmp_path / "slurm.conf"
    munge_socket = tmp_path / "munge.socket"
    slurmctld_port, slurmd_port = free_ports(2)
    for directory in ("state", "spool"):
        (tmp_path / directory).mkdir()
    conf.write_text(f"""\
ClusterName=disttest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={tmp_path / 'state'}
SlurmdSpoolDir={tmp_path / 'spool'}
SlurmctldPidFile={tmp_path / 'slurmctld.pid'}
SlurmdPidFile={tmp_path / 'slurmd.pid'}
SlurmctldPort={slurmctld_port}
SlurmdPort={slurmd_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
MinJobAge=2
SlurmctldLogFile={tmp_path / 'slurmctld.log'}
SlurmdLogFile={tmp_path / 'slurmd.log'}
NodeName={host} CPUs=2 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munged = shutil.which("munged") or "/usr/sbin/munged"
    daemons = [_daemon([munged, "--foreground", "--force", f"--socket={munge_socket}",
                        f"--pid-file={tmp_path / 'munged.pid'}",
                        f"--seed-file={tmp_path / 'munge.seed'}"], tmp_path / "munged.out")]
    wait_until(munge_socket.exists, 30, "munged's socket")
    daemons.append(_daemon(["slurmctld", "-D", "-f", str(conf)], tmp_path / "slurmctld.out"))
    daemons.append(_daemon(["slurmd", "-D", "-f", str(conf)], tmp_path / "slurmd.out"))
    prefix = f"env SLURM_CONF={conf} "
    commands = {name: prefix + name for name in ("sbatch", "squeue", "scancel")}

    def idle():
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                             text=True).stdout.strip()
        return out == "idle"
    wait_until(idle, 60, "the node to be idle")
    try:
        yield commands, env, tmp_path
    finally:
        subprocess.run(["scancel", "--user=root"], env=env, capture_output=True)
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def queue(env):
    out = subprocess.run(["squeue", "-h", "-o", "%i %T"], env=env, capture_output=True,
                         text=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def test_scale_walkthrough_cancel_mid_map_and_adapt_on_a_real_slurm(slurm, wait_until):
    commands, env, tmp_path = slurm
    with SLURMCluster(cores=1, memory="1GB", walltime="00:10:00", queue="debug",
                      center_host=socket.gethostname(), commands=commands,
                      log_directory=str(tmp_path), token_directory=str(tmp_path / "tokens"),
                      poll_interval=0.5) as cluster, Executor(cluster) as e:
        cluster.scale(2)
        e.wait_for_workers(2, timeout=120)
        assert len(queue(env)) == 2 and all(state == "RUNNING" for _, state in queue(env))
        # The seed walkthrough's steps.
        assert e.submit(lambda x: x + 1, 1).result() == 2
        assert e.gather(e.map(lambda x: x + 1, range(5))) == [1, 2, 3, 4, 5]
        assert e.submit(sum, e.map(lambda x: 2 * x, range(10))).result() == 90
        # A job cancelled mid-map: nothing is lost, what it held is recomputed.
        futures = e.map(slow_inc, range(40))
        wait_until(lambda: sum(f.done() for f in futures) >= 5, what="some results")
        victim = next(iter(cluster.workers.values())).job_id
        subprocess.run(["scancel", victim], env=env, check=True)
        assert e.gather(futures, timeout=180) == list(range(1, 41))
        futures = []  # released: nothing holds data now
        # Adaptive: down to no job when idle, up again when work arrives.
        cluster.adapt(minimum=0, maximum=2, target_duration=0.5, interval=0.5, wait_count=2)
        wait_until(lambda: not cluster.workers and not queue(env), 180, "no jobs")
        assert e.gather(e.map(slow_inc, range(10)), timeout=180) == list(range(1, 11))
    wait_until(lambda: not queue(env), 60, "the queue to empty")
