"""SLURMCluster against stand-in ``sbatch``/``squeue``/``scancel`` (fake_slurm.py) that really
run the job scripts on this machine: the job script, scaling by submitting and cancelling,
graceful retirement, a cancelled job noticed and replaced, and retirement before walltime.
(No real SLURM here: test_slurm_real.py runs one when slurmctld/slurmd/munge are installed.)"""
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from dist_client import Executor
from dist_deploy import SLURMCluster
from dist_deploy.slurm import parse_bytes, parse_walltime

pytestmark = pytest.mark.timeout(240)
FAKE = Path(__file__).with_name("fake_slurm.py")


def slow_inc(x):
    import time
    time.sleep(0.2)
    return x + 1


@pytest.fixture
def fake_slurm(tmp_path):
    state = tmp_path / "slurm"
    commands = {name: f"{sys.executable} {FAKE} {state} {name}"
                for name in ("sbatch", "squeue", "scancel")}
    yield state, commands
    # Nothing a job started outlives the test, whatever happened in it.
    for pid_file in state.glob("*.pid"):
        try:
            os.killpg(int(pid_file.read_text()), 9)
        except ProcessLookupError:
            pass


def calls(state, command):
    lines = (state / "calls.log").read_text().splitlines()
    return [json.loads(line)[1:] for line in lines if json.loads(line)[0] == command]


def alive_jobs(state):
    out = []
    for pid_file in state.glob("*.pid"):
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                out.append(pid_file.stem)
        except (ProcessLookupError, FileNotFoundError):
            pass
    return sorted(out)


def cluster_of(fake_slurm, tmp_path, **options):
    state, commands = fake_slurm
    defaults = dict(cores=2, memory="2GB", walltime="00:30:00", queue="debug",
                    account="proj", job_extra=["--exclusive"], center_host="127.0.0.1",
                    token_directory=str(tmp_path / "tokens"), poll_interval=0.3,
                    commands=commands, log_directory=str(tmp_path / "logs"))
    return SLURMCluster(**{**defaults, **options})


def test_sizes_and_walltimes_parse_as_slurm_writes_them():
    assert parse_bytes("2GB") == 2 * 10**9 and parse_bytes("512MiB") == 512 * 2**20
    assert parse_walltime("30") == 1800 and parse_walltime("01:30") == 90
    assert parse_walltime("02:00:00") == 7200 and parse_walltime("1-00:00:10") == 86410
    with pytest.raises(ValueError, match="size"):
        parse_bytes("lots")


def test_the_job_script_asks_for_what_the_worker_uses_and_carries_no_token(fake_slurm,
                                                                             tmp_path):
    with cluster_of(fake_slurm, tmp_path) as cluster:
        script = cluster.job_script()
        assert script.startswith("#!/usr/bin/env bash\n")
        for directive in ("#SBATCH -J dist-worker", "#SBATCH --cpus-per-task=2",
                          "#SBATCH --mem=1908M", "#SBATCH -t 00:30:00", "#SBATCH -p debug",
                          "#SBATCH -A proj", "#SBATCH --exclusive",
                          f"#SBATCH --output={tmp_path}/logs/%x-%j.out"):
            assert directive in script.splitlines()
        assert f"dist_worker.cli {cluster.address} --name slurm-next --nthreads 2 " \
               f"--memory-limit 2000000000 --timeout 60.0 --token-file " in script
        assert cluster.token not in script
        assert stat.S_IMODE(os.stat(cluster.token_file).st_mode) == 0o600
        token_file = cluster.token_file
    assert not token_file.exists()


def test_scale_submits_and_cancels_jobs_and_keeps_results(fake_slurm, tmp_path,
        wait_until):
    state, _ = fake_slurm
    with cluster_of(fake_slurm, tmp_path) as cluster, Executor(cluster) as e:
        cluster.scale(2)
        assert len(calls(state, "sbatch")) == 2
        e.wait_for_workers(2, timeout=60)
        futures = e.map(lambda x: x * 2, range(40))
        assert e.gather(futures) == [x * 2 for x in range(40)]
        cluster.scale(1)
        assert len(calls(state, "scancel")) == 1
        wait_until(lambda: len(alive_jobs(state)) == 1, what="the cancelled job to end")
        assert e.gather(futures) == [x * 2 for x in range(40)]  # moved, not lost
        del futures
        cluster.scale(0)
        wait_until(lambda: not alive_jobs(state), what="every job to end")
        assert not cluster.workers
    assert not alive_jobs(state)


def test_a_job_cancelled_mid_map_loses_nothing_and_is_replaced(fake_slurm, tmp_path,
        wait_until):
    state, commands = fake_slurm
    with cluster_of(fake_slurm, tmp_path, cores=1) as cluster, Executor(cluster) as e:
        cluster.scale(2)
        e.wait_for_workers(2, timeout=60)
        futures = e.map(slow_inc, range(40))
        wait_until(lambda: sum(f.done() for f in futures) >= 5, what="some results")
        victim = next(iter(cluster.workers.values())).job_id
        os.system(f"{commands['scancel']} {victim}")  # as an operator would
        assert e.gather(futures, timeout=120) == list(range(1, 41))
        wait_until(lambda: len(calls(state, "sbatch")) == 3, what="a replacement job")
        wait_until(lambda: len(alive_jobs(state)) == 2, what="two jobs again")
        assert victim not in [job.job_id for job in cluster.workers.values()]


def test_a_worker_near_its_walltime_retires_gracefully_and_is_replaced(fake_slurm, tmp_path,
        wait_until):
    state, _ = fake_slurm
    with cluster_of(fake_slurm, tmp_path, cores=1, walltime="00:40",
                    retire_before_walltime=30) as cluster, Executor(cluster) as e:
        cluster.scale(1)
        e.wait_for_workers(1, timeout=60)
        first = next(iter(cluster.workers.values())).job_id
        data = e.submit(lambda: list(range(1000)))
        assert len(data.result()) == 1000
        # About 10 s in, the first job is retired (its data moved) and another takes over.
        wait_until(lambda: first not in [j.job_id for j in cluster.workers.values()]
                   and len(cluster.workers) == 1, what="the first job's retirement")
        assert not (state / f"{first}.timeout").exists()  # it did not run out of time
        assert len(e.gather(data)) == 1000
        story = e.story(data.key)
        assert sum(1 for entry in story if entry["finish"] == "processing"
                   and entry["worker"] == "") == 1  # computed once, moved, not recomputed


def test_adaptive_submits_jobs_for_work_and_cancels_them_when_idle(fake_slurm, tmp_path,
        wait_until):
    state, _ = fake_slurm
    with cluster_of(fake_slurm, tmp_path, cores=1) as cluster, Executor(cluster) as e:
        cluster.adapt(minimum=0, maximum=2, target_duration=0.5, interval=0.3, wait_count=2)
        assert e.gather(e.map(slow_inc, range(20)), timeout=120) == list(range(1, 21))
        assert len(calls(state, "sbatch")) >= 1
        wait_until(lambda: not cluster.workers and not alive_jobs(state), what="back to 0")
