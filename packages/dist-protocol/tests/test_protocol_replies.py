"""Requests matched to their replies by id, over fake connections (no sockets)."""
import asyncio

import pytest
from dist_protocol.errors import CommClosedError
from dist_protocol.messages import KeyCancelled, WhoHas, WhoHasReply
from dist_protocol.replies import PendingReplies


class FakeComm:
    def __init__(self):
        self.sent = []

    def send(self, *messages):
        self.sent.extend(messages)


def ask(replies, comm, keys, timeout=None):
    return asyncio.ensure_future(
        replies.request(comm, lambda i: WhoHas(id=i, keys=keys), timeout))


def test_replies_reach_their_requests_in_any_order():
    async def main():
        replies, comm = PendingReplies(), FakeComm()
        first, second = ask(replies, comm, ["a"]), ask(replies, comm, ["b"])
        await asyncio.sleep(0)
        assert [m.keys for m in comm.sent] == [["a"], ["b"]]
        ids = [m.id for m in comm.sent]
        assert len(set(ids)) == 2 and len(replies) == 2
        other = KeyCancelled(key="x")
        rest = replies.received_all([WhoHasReply(id=ids[1], who_has={"b": ["w2"]}), other,
                                     WhoHasReply(id=ids[0], who_has={"a": ["w1"]})])
        assert rest == [other]  # not a reply: for the caller to handle
        assert (await first).who_has == {"a": ["w1"]}
        assert (await second).who_has == {"b": ["w2"]}
        assert len(replies) == 0
    asyncio.run(main())


def test_a_reply_for_no_pending_request_is_not_matched():
    async def main():
        replies, comm = PendingReplies(), FakeComm()
        assert not replies.received(WhoHasReply(id=99, who_has={}))
        request = ask(replies, comm, ["a"], timeout=0.01)
        with pytest.raises(TimeoutError):
            await request
        assert len(replies) == 0  # the late reply finds nothing
        assert not replies.received(WhoHasReply(id=comm.sent[0].id, who_has={}))
    asyncio.run(main())


def test_fail_ends_the_requests_of_one_connection_or_all():
    async def main():
        replies, one, two = PendingReplies(), FakeComm(), FakeComm()
        on_one, on_two = ask(replies, one, ["a"]), ask(replies, two, ["b"])
        await asyncio.sleep(0)
        replies.fail(CommClosedError("one closed"), one)
        with pytest.raises(CommClosedError, match="one closed"):
            await on_one
        assert not on_two.done()
        replies.fail(ConnectionError("everything closed"))
        with pytest.raises(ConnectionError):
            await on_two
        assert len(replies) == 0
    asyncio.run(main())


def test_ids_are_never_reused():
    async def main():
        replies, comm = PendingReplies(), FakeComm()
        for _ in range(3):
            request = ask(replies, comm, ["a"])
            await asyncio.sleep(0)
            replies.received(WhoHasReply(id=comm.sent[-1].id, who_has={}))
            await request
        assert len({m.id for m in comm.sent}) == 3
    asyncio.run(main())
