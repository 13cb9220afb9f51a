"""TLS end to end: a cluster on ``tls://`` addresses with certificates made at test time.

With ``--tls-ca`` every side presents a certificate the cluster CA signed (mutual TLS); the
shared token is still required on top. A client that cannot verify the cluster, or that the
cluster cannot verify, is refused, and the cluster goes on serving everyone else.
"""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from dist_client import AuthenticationError, Executor
from dist_protocol.comm import connect
from dist_protocol.errors import HandshakeError
from dist_protocol.security import ssl_context

pytestmark = pytest.mark.timeout(120)

TOKEN = "tls does not replace the token"
TOKEN_ENV = {"DIST_TOKEN": TOKEN}


def inc(x):
    return x + 1


def add(x, y):
    return x + y


# -- certificates -----------------------------------------------------------------------------
@dataclass
class Identity:
    cert: Path
    key: Path

    def options(self, ca: Path | None) -> tuple[str, ...]:
        """dcenter/dworker options for this identity, trusting ``ca``."""
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key),
                *(("--tls-ca", str(ca)) if ca else ()))


class Authority:
    """A certificate authority made for one test run (never written anywhere but tmp)."""

    def __init__(self, directory: Path, name: str):
        self.directory = directory
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256()))
        self.ca_file = directory / f"{name}-ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str) -> Identity:
        """A certificate for 127.0.0.1 and localhost, good for servers and clients alike."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256()))
        identity = Identity(self.directory / f"{self.name}-{name}.pem",
                            self.directory / f"{self.name}-{name}.key")
        identity.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        identity.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        identity.key.chmod(0o600)
        return identity


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    cluster_ca, rogue_ca = Authority(directory, "cluster"), Authority(directory, "rogue")
    return {"ca": cluster_ca.ca_file, "center": cluster_ca.issue("center"),
            "worker": cluster_ca.issue("worker"), "client": cluster_ca.issue("client"),
            "rogue ca": rogue_ca.ca_file, "rogue": rogue_ca.issue("client")}


@pytest.fixture
def tls_cluster(make_cluster, pki):
    """A center and two workers on tls:// with the cluster CA (mutual TLS), and the token."""
    cluster = make_cluster(n_workers=2, nthreads=1, env=TOKEN_ENV,
                           center_args=pki["center"].options(pki["ca"]),
                           worker_args=pki["worker"].options(pki["ca"]))
    assert cluster.address.startswith("tls://127.0.0.1:")
    return cluster


def client_options(pki, identity: str | None = "client", ca: str | None = "ca") -> dict:
    options = {}
    if identity:
        options.update(tls_cert=str(pki[identity].cert), tls_key=str(pki[identity].key))
    if ca:
        options.update(tls_ca=str(pki[ca]))
    return options


def test_a_tls_cluster_computes_end_to_end(tls_cluster, pki):
    e = tls_cluster.executor(token=TOKEN, **client_options(pki))
    first, second = (w.address for w in tls_cluster.workers)
    assert first.startswith("tls://") and second.startswith("tls://")
    left = e.submit(inc, 1, workers=[first])
    right = e.submit(inc, 10, workers=[second])
    assert e.submit(add, left, right, workers=[first]).result(timeout=30) == 13  # peer to peer
    [scattered] = e.scatter([100], workers=[second])  # client to worker
    assert e.gather([left, right, scattered]) == [2, 11, 100]  # worker to client
    assert sorted(e.ncores()) == sorted([first, second])


def nested_sum(n):
    """A task that submits tasks over the worker's own TLS settings and token."""
    from dist_client import worker_executor
    with worker_executor() as e:
        return sum(e.gather(e.map(inc, range(n))))


def test_a_task_submits_tasks_over_tls_with_the_workers_credentials(tls_cluster, pki):
    e = tls_cluster.executor(token=TOKEN, **client_options(pki))
    assert e.submit(nested_sum, 10).result(timeout=60) == 55


def test_the_wire_is_encrypted(tls_cluster, pki):
    """A plain-TCP dist hello to the TLS port is not understood, and the cluster's answer to a
    TLS client is a certificate, not dist messages."""
    host, port = tls_cluster.address.removeprefix("tls://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        context = ssl_context(False, ca=str(pki["ca"]))
        with context.wrap_socket(sock) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.getpeercert()["subject"] == ((("commonName", "center"),),)


CLIENT_REFUSALS = {
    # name: (client TLS options, address scheme, what the client sees)
    "no client certificate": (dict(identity=None), "tls", "refused"),
    "no CA to check the server": (dict(ca=None), "tls", "cannot verify"),
    "a certificate from another CA": (dict(identity="rogue"), "tls", "refused"),
    "trusting another CA": (dict(ca="rogue ca"), "tls", "cannot verify"),
    "no TLS at all": (dict(identity=None, ca=None), "tcp", "refused"),
}


@pytest.mark.parametrize("name", list(CLIENT_REFUSALS))
def test_a_client_the_cluster_cannot_verify_or_that_cannot_verify_it_is_refused(
        tls_cluster, pki, name):
    options, scheme, expected = CLIENT_REFUSALS[name]
    address = tls_cluster.address.replace("tls://", f"{scheme}://")
    with pytest.raises((OSError, HandshakeError)) as info:
        Executor(address, token=TOKEN, timeout=15, **client_options(pki, **options))
    message = str(info.value)
    assert not isinstance(info.value, TimeoutError) and "timed out" not in message, \
        f"not refused but timed out: {message}"
    if expected == "cannot verify":
        assert "CERTIFICATE_VERIFY_FAILED" in message, message
    elif scheme == "tls":
        assert "certificate" in message, message
    e = tls_cluster.executor(token=TOKEN, **client_options(pki))
    assert e.submit(inc, 5).result(timeout=30) == 6


def test_tls_does_not_replace_the_token(tls_cluster, pki):
    for token in ("wrong", None):
        with pytest.raises(AuthenticationError):
            Executor(tls_cluster.address, token=token, timeout=15, **client_options(pki))


def test_a_worker_with_a_certificate_from_another_ca_cannot_join(tls_cluster, pki,
                                                                 start_worker):
    intruder = start_worker(tls_cluster.address, *pki["rogue"].options(pki["ca"]),
                            env=TOKEN_ENV, wait=False)
    assert intruder.wait(timeout=60) == 2  # refused: a configuration error, not retried
    assert "certificate its CA signed" in intruder.output()
    e = tls_cluster.executor(token=TOKEN, **client_options(pki))
    assert sorted(e.ncores()) == sorted(w.address for w in tls_cluster.workers)


def test_silent_connections_to_a_tls_port_are_closed_after_the_handshake_timeout(
        make_cluster, pki):
    """Not even the TLS handshake may wait longer than --handshake-timeout."""
    cluster = make_cluster(n_workers=1, env=TOKEN_ENV,
                           center_args=(*pki["center"].options(pki["ca"]),
                                        "--handshake-timeout", "1"),
                           worker_args=pki["worker"].options(pki["ca"]))
    host, port = cluster.address.removeprefix("tls://").rsplit(":", 1)
    # Without the option the TLS handshake would wait asyncio's own 60 s: each socket closed
    # within the 30 s its read waits shows that the server's 1 s applied.
    sockets = [socket.create_connection((host, int(port)), timeout=30) for _ in range(20)]
    for sock in sockets:
        with sock:
            try:
                assert sock.recv(1) == b""
            except ConnectionResetError:
                pass
    e = cluster.executor(token=TOKEN, **client_options(pki))
    assert e.submit(inc, 1).result(timeout=30) == 2


def test_one_way_tls_a_server_without_a_ca_asks_no_client_certificate(start_center, pki):
    center = start_center(*pki["center"].options(ca=None), env=TOKEN_ENV)

    async def main():
        comm = await connect(center.address, role="client", token=TOKEN, timeout=15,
                             ssl_context=ssl_context(False, ca=str(pki["ca"])))
        assert isinstance(comm.transport.get_extra_info("ssl_object"), ssl.SSLObject)
        comm.close()
    asyncio.run(main())
