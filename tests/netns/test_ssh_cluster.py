"""``SSHCluster`` against real ``sshd`` servers, one per host (Debian's openssh-server), with
keys made by the test: the center on the first host, workers on the others, the client (which
runs the cluster) on a host of its own. Start, run the walkthrough, scale up and down, cut a
worker host's link, close -- and no process of the cluster left on any host, also when the
process that started it is killed."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .cluster import environment, wait_for_result
from .network import Host, namespace_pids

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
DRIVER = Path(__file__).with_name("ssh_cluster_client.py")


@pytest.fixture
def ssh_keys(tmp_path):
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("needs openssh-server and openssh-client (apt-get install openssh-server)")
    for name in ("client_key", "host_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(tmp_path / name)], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    config = tmp_path / "sshd_config"
    config.write_text(f"""\
HostKey {tmp_path / 'host_key'}
AuthorizedKeysFile {tmp_path / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
ClientAliveInterval 2
ClientAliveCountMax 2
""")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    return tmp_path


def start_sshd(host: Host, keys: Path):
    sshd = host.start([SSHD, "-D", "-e", "-f", str(keys / "sshd_config"), "-o",
                       f"ListenAddress={host.address}"], label=f"sshd on {host.name}")
    sshd.wait_for("Server listening", timeout=30)
    return sshd


def hosts_with_ssh(network, keys):
    hosts = [network.add_host(name) for name in ("center", "worker-b", "worker-c", "client")]
    sshds = {host.name: start_sshd(host, keys) for host in hosts[:3]}
    return hosts, sshds


def start_driver(client: Host, servers: list[Host], keys: Path, death_timeout: float = 5):
    config = {"hosts": [h.address for h in servers],
              "connect_options": {"client_keys": [str(keys / "client_key")],
                                  "known_hosts": None, "ServerAliveInterval": 1,
                                  "ServerAliveCountMax": 3},
              "worker_options": {"nthreads": 1, "timeout": death_timeout},
              "center_options": {"port": 8786, "no_dashboard": True, "heartbeat_timeout": 3}}
    return client.start([sys.executable, str(DRIVER), json.dumps(config)],
                        env=environment(None), label="ssh cluster driver", stdin=True)


def leftovers(host: Host, sshd) -> list[str]:
    """What runs on ``host`` besides its sshd listener (its command lines)."""
    out = []
    for pid in namespace_pids(host.namespace):
        if pid == sshd.pid:
            continue
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except FileNotFoundError:
            pass
    return out


def wait_until_empty(hosts, sshds, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        left = {h.name: leftovers(h, sshds[h.name]) for h in hosts if h.name in sshds}
        if not any(left.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left: {left}")
        time.sleep(0.2)


def command_lines(hosts) -> str:
    lines = []
    for host in hosts:
        for pid in namespace_pids(host.namespace):
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
            except FileNotFoundError:
                pass
    return "\n".join(lines)


def test_start_scale_cut_a_link_and_close_leaving_nothing(network, ssh_keys):
    hosts, sshds = hosts_with_ssh(network, ssh_keys)
    center, worker_b, worker_c, client = hosts
    driver = start_driver(client, [center, worker_b, worker_c], ssh_keys)
    started = wait_for_result(driver, 1, timeout=120)
    assert started["address"] == f"{center.address}:8786"
    assert started["workers"] == ["ssh-198-18-0-2-0", "ssh-198-18-0-3-1"]
    # The token reached every process without being on any command line.
    assert started["token"] not in command_lines(hosts)

    driver.send("walkthrough")
    result = wait_for_result(driver, 2, timeout=120)
    assert result["total"] == sum(range(1, 51))
    assert len(result["where"]) == 2

    driver.send("scale 4")
    assert len(wait_for_result(driver, 3, timeout=120)["workers"]) == 4
    driver.send("registered")
    registered = wait_for_result(driver, 4, timeout=120)["registered"]
    assert len(registered) == 4 and {n.rsplit("-", 1)[0] for n in registered} == {
        "ssh-198-18-0-2", "ssh-198-18-0-3"}

    driver.send("scale 2")  # graceful: the walkthrough's results stay
    assert len(wait_for_result(driver, 5, timeout=120)["workers"]) == 2
    driver.send("gather")
    assert wait_for_result(driver, 6, timeout=120)["values"] == list(range(1, 51))

    # Cut worker-c off: its worker gives up on the center and exits, its ssh ends, and
    # the cluster notices.
    on_c = [n for n in wait_for_result(driver, 5, timeout=1)["workers"] if "0-3" in n]
    worker_c.cut_link()
    driver.send("forget-dead 90")
    dead = wait_for_result(driver, 7, timeout=120)
    assert dead["gone"] == on_c
    deadline = time.monotonic() + 60
    while leftovers(worker_c, sshds["worker-c"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(worker_c, sshds["worker-c"]) == []
    worker_c.restore_link()

    driver.send("close")
    assert wait_for_result(driver, 8, timeout=120)["closed"] == "closed"
    assert driver.wait(30) == 0
    wait_until_empty(hosts, sshds)


def test_killing_the_process_that_started_the_cluster_stops_everything(network, ssh_keys):
    hosts, sshds = hosts_with_ssh(network, ssh_keys)
    center, worker_b, worker_c, client = hosts
    driver = start_driver(client, [center, worker_b, worker_c], ssh_keys, death_timeout=60)
    wait_for_result(driver, 1, timeout=120)
    assert leftovers(worker_b, sshds["worker-b"]) and leftovers(center, sshds["center"])
    driver.signal(signal.SIGKILL)
    driver.wait(30)
    wait_until_empty(hosts, sshds)


def test_the_dist_ssh_command_runs_a_cluster_until_ctrl_c(network, ssh_keys, tmp_path):
    hosts, sshds = hosts_with_ssh(network, ssh_keys)
    center, worker_b, worker_c, client = hosts
    token_file = tmp_path / "token"
    dist_ssh = Path(sys.executable).with_name("dist-ssh")
    command = [str(dist_ssh), center.address, worker_b.address, worker_c.address,
               "--center-port", "8786", "--dashboard-port", "8790",
               "--remote-python", sys.executable, "--token-file", str(token_file),
               "-i", str(ssh_keys / "client_key"), "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "--death-timeout", "5"]
    cli = client.start(command, env=environment(None), label="dist-ssh")
    cli.wait_for(rf"Center at {center.address}:8786", timeout=120)
    cli.wait_for(r"Workers: ssh-198-18-0-2-0, ssh-198-18-0-3-1", timeout=60)
    assert token_file.stat().st_mode & 0o077 == 0  # readable by its owner alone
    token = token_file.read_text().strip()
    assert token not in command_lines(hosts)
    probe = client.run([sys.executable, "-c", (
        "from dist_client import Executor; "
        f"e = Executor('{center.address}:8786', token_file='{token_file}'); "
        "e.wait_for_workers(2, timeout=60); print(e.submit(sum, [1, 2]).result())")],
        env=environment(None), timeout=120)
    assert probe.stdout.strip() == "3"
    cli.signal(signal.SIGINT)
    assert cli.wait(60) == 0
    wait_until_empty(hosts, sshds)
