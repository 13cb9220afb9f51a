"""The compression feature: large compressible payload frames travel compressed between hosts."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest

from dist_protocol import compression
from dist_protocol.comm import compressed, connect, listen
from dist_protocol.errors import InvalidMessage
from dist_protocol.features import FEATURES_ENV, default_features
from dist_protocol.messages import Data, GetData, PutData, decode_batch, encode_batch
from dist_protocol.serialize import Payload, deserialize, serialize
from dist_protocol.testing import comm_pair

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(not compression.available(), reason="lz4 is not installed")]

COMPRESSIBLE = b"0123456789abcdef" * 20_000  # 320 kB
RANDOM = os.urandom(320_000)


def test_large_compressible_frames_are_compressed_and_decode_plain():
    payload = Payload("pickle", [b"head", COMPRESSIBLE, RANDOM])
    packed = compression.compress_payload(payload)
    assert packed.compression == [None, "lz4", None]
    assert packed.frames[0] == b"head" and packed.frames[2] is RANDOM
    assert len(packed.frames[1]) < len(COMPRESSIBLE) // 10
    frames = encode_batch([PutData(id=1, data={"x": packed})])
    assert sum(memoryview(f).nbytes for f in frames) < len(COMPRESSIBLE) // 10 + len(RANDOM) + 200
    (msg,) = decode_batch([bytes(f) for f in frames])
    plain = msg.data["x"]
    assert plain.compression is None
    assert [bytes(f) for f in plain.frames] == [b"head", COMPRESSIBLE, RANDOM]
    assert isinstance(plain.frames[1], bytearray)  # writable, as numpy arrays want


def test_small_or_incompressible_payloads_are_left_as_they_are():
    for payload in (Payload("bytes", [RANDOM]), Payload("bytes", [b"a" * 1000])):
        assert compression.compress_payload(payload) is payload
    message = Data(id=1, data={"x": Payload("bytes", [RANDOM])})
    assert compressed(message) is message
    assert compressed(GetData(id=1, keys=["x"])) == GetData(id=1, keys=["x"])


def test_a_numpy_array_survives_compression_writable():
    numpy = pytest.importorskip("numpy")
    value = numpy.zeros(100_000)
    packed = compression.compress_payload(serialize(value))
    assert packed.compression == [None, "lz4"]
    (msg,) = decode_batch([bytes(f) for f in encode_batch([Data(id=1, data={"v": packed})])])
    back = deserialize(msg.data["v"])
    back[0] = 1.0
    assert (back[1:] == 0).all()


def test_zstd_payloads_decode_plain_and_writable():
    numpy = pytest.importorskip("numpy")
    payload = Payload("pickle", [b"head", COMPRESSIBLE, RANDOM])
    packed = compression.compress_payload(payload, "zstd")
    assert packed.compression == [None, "zstd", None]
    assert len(packed.frames[1]) < len(compression.compress_frame(COMPRESSIBLE, "lz4"))
    (msg,) = decode_batch([bytes(f) for f in encode_batch([PutData(id=1, data={"x": packed})])])
    assert [bytes(f) for f in msg.data["x"].frames] == [b"head", COMPRESSIBLE, RANDOM]
    value = numpy.arange(100_000) % 7
    (msg,) = decode_batch([bytes(f) for f in encode_batch([Data(id=1, data={
        "v": compression.compress_payload(serialize(value), "zstd")})])])
    back = deserialize(msg.data["v"])
    back[0] = 9  # writable, as numpy arrays want
    assert (back[1:] == value[1:]).all()


def test_the_sender_picks_an_agreed_codec_by_its_preference():
    both = {"compression", "compression-zstd"}
    assert compression.choose(both) == "lz4"
    assert compression.choose(both, "zstd") == "zstd"
    assert compression.choose({"compression"}, "zstd") == "lz4"  # an older peer: lz4 still
    assert compression.choose({"compression-zstd"}) == "zstd"
    assert compression.choose(both, "none") is None
    assert compression.choose({"scatter-done"}) is None
    assert compression.preference({}) == "auto"
    assert compression.preference({"DIST_COMPRESSION": "ZSTD"}) == "zstd"
    assert compression.preference({"DIST_COMPRESSION": "off"}) == "none"
    with pytest.raises(ValueError, match="choose one of auto, lz4, zstd, none"):
        compression.preference({"DIST_COMPRESSION": "gzip"})


ZSTD_UNSIZED = bytes.fromhex("28b52ffd0000550000186162630100d2d40d01")


@pytest.mark.parametrize("codecs, frame, match", [
    (["zstd"], b"\x00\x01\x02\x03\x04\x05", "valid header"),
    (["zstd"], ZSTD_UNSIZED, "does not state its content size"),
    (["zstd"], bytes.fromhex("28b52ffde00000000001000000"), "claims"),
    (["zstd"], bytes.fromhex("28b52ffd2078550000186162630100d2d40d"), "decompress"),
    (["zstd"], bytes.fromhex("28b52ffd2079550000186162630100d2d40d01"), "decompress"),
    (["zip"], b"x", "unknown payload compression"),
    (["lz4", None], b"x", "one codec"),
    ("lz4", b"x", "one codec"),
    (["lz4"], b"\x01", "shorter than its size"),
    (["lz4"], (2**30).to_bytes(4, "little") + b"\x00", "claims"),
    (["lz4"], (10).to_bytes(4, "little") + b"\xff\xff\xff", "does not decompress"),
])
def test_malformed_compression_is_an_invalid_message(codecs, frame, match):
    with pytest.raises(InvalidMessage, match=match):
        compression.decompress_frames([frame], codecs)


def test_the_feature_is_announced_where_lz4_can_be_imported():
    assert "compression" in default_features({})
    assert "compression" not in default_features({FEATURES_ENV: "scatter-done"})
    assert "compression-zstd" in default_features({})


def test_zstd_travels_where_both_took_it_and_lz4_to_a_peer_without_it(monkeypatch):
    async def send(acceptor_features):
        client, server = await comm_pair(acceptor_features=acceptor_features)
        got = asyncio.get_running_loop().create_future()
        server.set_handler(lambda messages: got.set_result(messages))
        codec = client.codec
        client.send(PutData(id=1, data={"x": Payload("bytes", [COMPRESSIBLE])}))
        (msg,) = await asyncio.wait_for(got, 5)
        assert bytes(msg.data["x"].frames[0]) == COMPRESSIBLE
        client.close()
        server.close()
        return codec

    monkeypatch.setenv("DIST_COMPRESSION", "zstd")
    assert asyncio.run(send(["compression", "compression-zstd"])) == "zstd"
    assert asyncio.run(send(["compression"])) == "lz4"  # as an older peer announces
    monkeypatch.setenv("DIST_COMPRESSION", "none")
    assert asyncio.run(send(["compression", "compression-zstd"])) is None


def test_loopback_connections_never_compress():
    async def main():
        received = asyncio.get_running_loop().create_future()
        listener = await listen("127.0.0.1:0", lambda comm: received.set_result(comm))
        comm = await connect(f"127.0.0.1:{listener.port}", role="client")
        assert "compression" in comm.features and not comm.compresses
        comm.close()
        listener.close()
    asyncio.run(main())


def test_a_pair_that_agreed_compression_sends_data_compressed_and_receives_it_plain():
    async def main():
        client, server = await comm_pair()  # in memory, between hosts by their names
        assert client.compresses and server.compresses
        got = asyncio.get_running_loop().create_future()
        server.set_handler(lambda messages: got.set_result(messages))
        written = []
        write = client.transport.write
        client.transport.write = lambda data: (written.append(memoryview(data).nbytes),
                                               write(data))
        client.send(PutData(id=1, data={"x": Payload("bytes", [COMPRESSIBLE])}))
        (msg,) = await asyncio.wait_for(got, 5)
        assert bytes(msg.data["x"].frames[0]) == COMPRESSIBLE
        assert 0 < sum(written) < len(COMPRESSIBLE) // 10  # what crossed was compressed
        client.close()
        server.close()
        plain_client, plain_server = await comm_pair(acceptor_features=["scatter-done"])
        assert not plain_client.compresses and not plain_server.compresses
        plain_client.close()
        plain_server.close()
    asyncio.run(main())


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks an interface
            host = s.getsockname()[0]
    except OSError:
        return None
    return None if host.startswith("127.") else host


def test_between_hosts_data_travels_compressed_and_arrives_plain():
    host = _non_loopback_address()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect to")
    asyncio.run(_between_hosts(host))


async def _between_hosts(host: str) -> None:
    received: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_comm(comm):
        comm.set_handler(lambda messages: received.done() or received.set_result(
            (comm, messages)))

    listener = await listen(f"{host}:0", on_comm, who="worker")
    try:
        comm = await connect(f"{host}:{listener.port}", role="client")
        assert comm.compresses
        comm.send(PutData(id=1, data={"x": Payload("bytes", [COMPRESSIBLE])}))
        server_comm, messages = await asyncio.wait_for(received, 10)
        assert server_comm.compresses
        assert bytes(messages[0].data["x"].frames[0]) == COMPRESSIBLE
        comm.close()
    finally:
        listener.close()


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_codecs_are_imported_at_their_first_use_not_to_announce_them():
    out = run_python(
        "import sys; from dist_protocol import compression as c; "
        "from dist_protocol.features import default_features; "
        "f = default_features({}); "
        "print('compression' in f, 'compression-zstd' in f, c.available('lz4'), "
        "'lz4' in sys.modules, 'zstandard' in sys.modules, 'platform' in sys.modules); "
        "c.compress_frame(b'x' * 100_000, 'zstd'); print('zstandard' in sys.modules)")
    assert out.splitlines() == ["True True True False False False", "True"]


def test_a_codec_installed_but_not_importable_is_not_available():
    out = run_python(
        "from dist_protocol import compression as c\n"
        "c.MODULES['lz4'] = 'lz4.no_such_module'  # the package is found, the module is not\n"
        "print(c.available('lz4'))\n"
        "print(c.compress_frame(b'x' * 100_000, 'lz4'), c.available('lz4'))\n"
        "try:\n"
        "    c.decompress_frames([b'\\x05\\x00\\x00\\x00abcde'], ['lz4'])\n"
        "except c.InvalidMessage as exc:\n"
        "    print(exc)\n")
    assert out.splitlines() == ["True", "None False",
                                "an lz4-compressed frame, but lz4 is not installed here"]
