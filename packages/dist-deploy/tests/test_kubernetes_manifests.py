"""The Kubernetes image recipe and manifests (kubernetes/), which no cluster here runs: their
structure, that they hang together (selectors, ports, the token's Secret), that every
dcenter/dworker option they use exists, and, when kubernetes-validate is installed, the
Kubernetes schemas."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml reads the manifests")
KUBE = Path(__file__).resolve().parents[1] / "kubernetes"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def documents():
    return list(yaml.safe_load_all((KUBE / "dist.yaml").read_text()))


def by_kind(documents, kind, name):
    [found] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_every_document_has_the_required_fields(documents):
    assert {(d["kind"], d["metadata"]["name"]) for d in documents} == {
        ("Service", "dist-center"), ("Deployment", "dist-center"),
        ("Deployment", "dist-worker")}
    for document in documents:
        assert document["apiVersion"] in ("v1", "apps/v1")
        if document["kind"] == "Deployment":
            spec = document["spec"]
            labels = spec["template"]["metadata"]["labels"]
            assert spec["selector"]["matchLabels"].items() <= labels.items()
            for container in spec["template"]["spec"]["containers"]:
                assert container["name"] and container["image"] and container["command"]


def test_the_service_reaches_the_center_on_its_named_ports(documents):
    service = by_kind(documents, "Service", "dist-center")
    center = by_kind(documents, "Deployment", "dist-center")
    assert service["spec"]["selector"].items() <= center["spec"]["template"]["metadata"][
        "labels"].items()
    [container] = center["spec"]["template"]["spec"]["containers"]
    named = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= named.keys()
    assert named["center"] == 8787
    assert container["readinessProbe"]["tcpSocket"]["port"] == "center"


def test_the_token_comes_from_the_secret_as_a_file(documents):
    for name in ("dist-center", "dist-worker"):
        spec = by_kind(documents, "Deployment", name)["spec"]["template"]["spec"]
        [container] = spec["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["DIST_TOKEN_FILE"]["value"] == "/etc/dist/token"
        assert "DIST_TOKEN" not in env
        [volume] = spec["volumes"]
        assert volume["secret"]["secretName"] == "dist-token"
        [mount] = container["volumeMounts"]
        assert mount["name"] == volume["name"] and mount["mountPath"] == "/etc/dist"
    assert not re.search(r"[0-9a-f]{64}", (KUBE / "dist.yaml").read_text())


def test_workers_reach_the_center_through_the_service(documents):
    worker = by_kind(documents, "Deployment", "dist-worker")
    [container] = worker["spec"]["template"]["spec"]["containers"]
    command = " ".join(container["command"])
    assert "dworker tcp://dist-center:8787" in command
    assert "--contact-address \"$POD_IP:8789\"" in command


def options_of(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    return set(re.findall(r"--[a-z][a-z-]+", out))


def test_every_option_the_manifests_use_exists(documents):
    pytest.importorskip("dist_center", reason="checks dcenter's options")
    pytest.importorskip("dist_worker", reason="checks dworker's options")
    commands = {"dcenter": "dist_center.cli", "dworker": "dist_worker.cli"}
    for name in ("dist-center", "dist-worker"):
        [container] = by_kind(documents, "Deployment", name)["spec"]["template"]["spec"][
            "containers"]
        command = " ".join(container["command"])
        program = "dcenter" if "dcenter" in command else "dworker"
        used = set(re.findall(r"--[a-z][a-z-]+", command))
        assert used <= options_of(commands[program]), used - options_of(commands[program])


def test_the_dockerfile_copies_what_exists_and_installs_the_servers():
    lines = [line.strip() for line in (KUBE / "Dockerfile").read_text().splitlines()]
    assert lines[[i for i, line in enumerate(lines) if line and not line.startswith("#")][0]
                 ].startswith("FROM python:3.")
    for line in lines:
        if line.startswith("COPY "):
            source = line.split()[1]
            assert (ROOT / source / "pyproject.toml").exists(), source
    text = "\n".join(lines)
    assert "USER 1000" in text and "dist-center" in text and "dist-worker" in text


def test_the_manifests_match_the_kubernetes_schemas(documents):
    validate = pytest.importorskip("kubernetes_validate",
                                   reason="pip install kubernetes-validate for the schemas")
    for document in documents:
        validate.validate(document, "1.30", strict=True)
