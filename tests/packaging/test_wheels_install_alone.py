"""Each package builds an sdist and a wheel, and installs alone into a fresh environment.

``pip install dist-client`` must pull only the client's and the protocol's dependencies;
the CLIs answer ``--help`` and ``--version``.
"""
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["dist-protocol", "dist-center", "dist-worker", "dist-client", "dist-deploy"]
pytestmark = pytest.mark.timeout(600)


def run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True,
                          **kwargs)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheelhouse")
    pytest.importorskip("build", reason="the 'build' package is needed to build the wheels")
    for name in PACKAGES:
        run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out,
            ROOT / "packages" / name)
    return out


def fresh_env(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin" / "python"


def installed(python: Path) -> set[str]:
    listing = run(python, "-m", "pip", "list", "--format=freeze").stdout
    return {line.split("==")[0].lower() for line in listing.splitlines() if "==" in line}


def test_every_package_builds_a_wheel_and_an_sdist(wheelhouse):
    names = sorted(p.name for p in wheelhouse.iterdir())
    for name in PACKAGES:
        stem = name.replace("-", "_")
        assert any(n.startswith(stem) and n.endswith(".whl") for n in names), names
        assert any(n.startswith(stem) and n.endswith(".tar.gz") for n in names), names


def test_every_wheel_ships_py_typed(wheelhouse):
    # PEP 561: without the marker, type checkers ignore the annotations of an installed package
    import zipfile
    for name in PACKAGES:
        stem = name.replace("-", "_")
        [wheel] = wheelhouse.glob(f"{stem}-*.whl")
        assert f"{stem}/py.typed" in zipfile.ZipFile(wheel).namelist(), wheel.name


def test_client_installs_alone(wheelhouse, tmp_path):
    python = fresh_env(tmp_path / "env")
    run(python, "-m", "pip", "install", "-q", "--find-links", wheelhouse, "dist-client")
    have = installed(python)
    assert {"dist-client", "dist-protocol"} <= have
    assert not {"dist-center", "dist-worker", "typer", "psutil"} & have, have
    run(python, "-c", "import dist_client, importlib.util as u; "
                      "assert u.find_spec('dist_center') is None; "
                      "assert u.find_spec('dist_worker') is None")
    probe = subprocess.run([python, "-c", "from dist_client import Executor; Executor()"],
                           capture_output=True, text=True)
    assert probe.returncode != 0
    assert "pip install 'dist-client[local]'" in probe.stderr


@pytest.mark.parametrize("name,cli", [("dist-center", "dcenter"), ("dist-worker", "dworker")])
def test_servers_install_alone_with_their_cli(wheelhouse, tmp_path, name, cli):
    python = fresh_env(tmp_path / "env")
    run(python, "-m", "pip", "install", "-q", "--find-links", wheelhouse, name)
    have = installed(python)
    assert {name, "dist-protocol"} <= have
    assert "dist-client" not in have and not ({"dist-center", "dist-worker"} - {name}) & have
    script = python.parent / cli
    assert "0.1.0" in run(script, "--version").stdout
    assert "Usage" in run(script, "--help", env={**os.environ, "COLUMNS": "120"}).stdout


def test_deploy_installs_alone_with_the_client_only(wheelhouse, tmp_path):
    python = fresh_env(tmp_path / "env")
    run(python, "-m", "pip", "install", "-q", "--find-links", wheelhouse, "dist-deploy")
    have = installed(python)
    assert {"dist-deploy", "dist-client", "dist-protocol"} <= have
    assert not {"dist-center", "dist-worker"} & have, have
    run(python, "-c", "from dist_deploy import Cluster, LocalCluster, SSHCluster, SLURMCluster")
    assert "dist-ssh" in run(python.parent / "dist-ssh", "--help").stdout
