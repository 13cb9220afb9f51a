"""dist_protocol.testing: the in-memory comm pair, the vector loader, the JSON tagging, and the
spec generator's tolerance for ops it has never seen."""
from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import field

import msgpack
import pytest

from dist_protocol.errors import AuthenticationError, VersionMismatch
from dist_protocol.messages import OPS, Message, Release, WhoHas, message
from dist_protocol.testing import (SPEC_DIR_ENV, comm_pair, from_json, load_vectors, spec_dir,
                                   to_json)

pytestmark = pytest.mark.timeout(30)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


# -- the in-memory pair ------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "tok"])
@pytest.mark.parametrize("chunk_size", [None, 1])
def test_a_comm_pair_talks_both_ways_after_a_real_handshake(token, chunk_size):
    async def main():
        client, server = await comm_pair(token=token, name="alice", chunk_size=chunk_size)
        assert client.version == server.version == 1
        assert (server.peer_role, server.peer_name) == ("client", "alice")
        client.send(WhoHas(id=1, keys=["a"]), Release(keys=["a"]))
        assert [await server.recv(), await server.recv()] == [WhoHas(id=1, keys=["a"]),
                                                              Release(keys=["a"])]
        server.send(Release(keys=["b"]))
        assert await client.recv() == Release(keys=["b"])
        client.close()
        await asyncio.wait_for(server.closed, 5)
    run(main())


def test_a_comm_pair_refuses_a_wrong_token():
    with pytest.raises(AuthenticationError):
        run(comm_pair(initiator_token="mine", acceptor_token="theirs"))


def test_a_comm_pair_refuses_disjoint_versions():
    with pytest.raises(VersionMismatch):
        run(comm_pair(initiator_versions=(2, 3), acceptor_versions=(1, 1)))


def test_a_bad_batch_on_a_pair_costs_only_that_connection():
    async def main():
        client, server = await comm_pair()
        other_client, other_server = await comm_pair()
        client.transport.write(b"\x00" * 8)  # a batch of zero frames
        await asyncio.wait_for(server.closed, 5)
        assert server.abort_error.code == "malformed-frame"
        other_client.send(Release(keys=["x"]))
        assert await other_server.recv() == Release(keys=["x"])
    run(main())


# -- vectors and their JSON -----------------------------------------------------------------------


def test_spec_dir_is_found_and_can_be_given(monkeypatch, tmp_path):
    assert (spec_dir() / "PROTOCOL.md").is_file()
    monkeypatch.setenv(SPEC_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no vectors"):
        spec_dir()
    (tmp_path / "vectors").mkdir()
    assert spec_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="missing"):
        load_vectors("framing")


def test_binary_and_extension_values_are_tagged_in_json():
    value = {"a": b"\x00\xff", "b": [msgpack.ExtType(1, b"k")], "c": (1, None)}
    tagged = to_json(value)
    assert tagged == {"a": {"$bin": "00ff"}, "b": [{"$ext": [1, "6b"]}], "c": [1, None]}
    assert from_json(tagged) == {"a": b"\x00\xff", "b": [msgpack.ExtType(1, b"k")],
                                 "c": [1, None]}


# -- a new op reaches the spec with one command ---------------------------------------------------


# Builds the whole spec, its catalogue and every vector: 4-5 s alone, and over 30 s on a
# loaded machine late in a full run.
@pytest.mark.timeout(180)
def test_the_generator_handles_an_op_it_has_never_seen():
    spec = importlib.util.spec_from_file_location("dist_spec_generate_new_op",
                                                  spec_dir() / "tools" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)

    @message("frobnicate", "client->center", since=1)
    class Frobnicate(Message):
        id: int
        targets: dict[str, list[float]]  # where and how hard
        note: str | None = None
        tags: list[str] = field(default_factory=list)
    try:
        assert "frobnicate" in generate.build_schema()["messages"]
        catalogue = generate.render_catalogue()
        assert "#### frobnicate" in catalogue and "where and how hard" in catalogue
        cases = generate.all_vectors()["messages"]["cases"]
        assert {"frobnicate/required-fields", "frobnicate/every-field"} <= {
            c["name"] for c in cases if c["valid"]}
    finally:
        del OPS["frobnicate"]
