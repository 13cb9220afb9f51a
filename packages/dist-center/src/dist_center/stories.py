"""A key's story across the cluster: the center's transition log, merged in time order with
the logs of every worker whose connection agreed the ``story`` feature (an older worker has no
log). The center asks every such worker, as any may have fetched or held the key, and answers
once all have answered or left. ``Stories`` keeps the requests; its methods return the
messages to send.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable

from dist_protocol.messages import Message, Story, StoryReply

Outgoing = list[tuple[str, Message]]


class Stories:
    def __init__(self) -> None:
        # Request number -> the client, its request id, the workers yet to answer, the entries.
        self.pending: dict[int, tuple[str, int, set[str], list[dict]]] = {}
        self.tellers: set[str] = set()  # workers whose connections agreed "story"
        self._numbers = itertools.count(1)

    def worker_joined(self, address: str, features: frozenset[str]) -> None:
        if "story" in features:
            self.tellers.add(address)

    def ask(self, client: str, msg: Story, log: Iterable[tuple[str, str, str, str, float]],
            workers: Iterable[str]) -> Outgoing:
        """``log``: the center's own transitions of the keys; ``workers``: those registered."""
        entries = [{"key": key, "start": start, "finish": finish, "stimulus_id": stimulus_id,
                    "time": when, "worker": ""}
                   for key, start, finish, stimulus_id, when in log]
        number = next(self._numbers)
        tellers = self.tellers.intersection(workers)
        self.pending[number] = (client, msg.id, tellers, entries)
        out: Outgoing = [(address, Story(id=number, keys=msg.keys)) for address in tellers]
        return out + self._progress(number)

    def reply(self, address: str, msg: StoryReply) -> Outgoing:
        story = self.pending.get(msg.id)
        if story is None or address not in story[2]:
            return []
        story[2].discard(address)
        story[3].extend(msg.entries)
        return self._progress(msg.id)

    def worker_left(self, address: str) -> Outgoing:
        """It will not answer: the stories waiting for it are told without it."""
        self.tellers.discard(address)
        out: Outgoing = []
        for number, story in list(self.pending.items()):
            if address in story[2]:
                story[2].discard(address)
                out += self._progress(number)
        return out

    def client_left(self, client: str) -> None:
        for number in [n for n, story in self.pending.items() if story[0] == client]:
            del self.pending[number]

    def _progress(self, number: int) -> Outgoing:
        client, request, waiting_for, entries = self.pending[number]
        if waiting_for:
            return []
        del self.pending[number]
        entries.sort(key=lambda entry: entry["time"])  # (stable: each host's order stays)
        return [(client, StoryReply(id=request, entries=entries))]
