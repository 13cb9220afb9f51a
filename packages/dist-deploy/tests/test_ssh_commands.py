"""How SSHCluster builds its ssh and server command lines (the real sshd runs in
tests/netns/test_ssh_cluster.py)."""
import os
import shlex
import stat

from dist_deploy.remote import BOOTSTRAP, bootstrap_command
from dist_deploy.ssh import cli_options, host_of, ssh_argv
from dist_deploy.ssh_cli import parser, token_from


def test_connect_options_map_to_ssh_flags():
    argv = ssh_argv("alice@node1", {"username": "bob", "port": 2222, "client_keys": ["k1", "k2"],
                                    "known_hosts": None, "ConnectTimeout": 5}, "CMD")
    assert argv[:2] == ["ssh", "-T"]
    assert argv[-2:] == ["alice@node1", "CMD"]
    joined = " ".join(argv)
    assert "-l bob" in joined and "-p 2222" in joined and "-i k1 -i k2" in joined
    assert "-o StrictHostKeyChecking=no" in joined and "-o UserKnownHostsFile=/dev/null" in joined
    assert "-o ConnectTimeout=5" in joined and "-o BatchMode=yes" in joined


def test_server_options_become_flags():
    assert cli_options({"nthreads": 2, "memory_limit": "4GB", "no_dashboard": True,
                        "tls_ca": None, "nanny": False}) == [
        "--nthreads", "2", "--memory-limit", "4GB", "--no-dashboard"]
    assert host_of("alice@node1") == "node1" and host_of("node1") == "node1"


def test_the_remote_command_carries_no_token_and_runs_the_bootstrap():
    command = bootstrap_command("/opt/py/bin/python3", ["/opt/py/bin/python3", "-m",
                                                        "dist_worker.cli", "h:8786"])
    parts = shlex.split(command)
    assert parts[:3] == ["/opt/py/bin/python3", "-c", BOOTSTRAP]
    assert parts[3:] == ["/opt/py/bin/python3", "-m", "dist_worker.cli", "h:8786"]
    assert "DIST_TOKEN" not in " ".join(parts[3:])


def test_the_cli_token_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "token"
    token = token_from(path)
    assert len(token) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert token_from(path) == token


def test_the_cli_parses_hosts_and_ssh_options():
    args = parser().parse_args(["a", "b", "c", "-o", "Port=2222", "-i", "key", "--nthreads", "4"])
    assert args.hosts == ["a", "b", "c"] and args.ssh_option == ["Port=2222"]
    assert args.identity == ["key"] and args.nthreads == 4
