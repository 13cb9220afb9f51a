"""What the workers are doing now, asked for a client (``worker-query``): the center passes
the question to every registered worker whose connection agreed the ``worker-query`` feature
(or to those the query names), and answers once all have answered or left. ``WorkerQueries``
keeps the questions in flight; its methods return the messages to send. The center's own log
lines (``center-logs``) are read from ``own_logs``, which the server sets to its process's
(the state itself logs nothing): no worker is asked for them.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dist_protocol.messages import Message, WorkerQuery, WorkerQueryReply

Outgoing = list[tuple[str, Message]]


@dataclass
class Question:
    client: str
    request: int  # the client's id for it
    waiting_for: set[str]
    answers: dict[str, Any] = field(default_factory=dict)


class WorkerQueries:
    def __init__(self) -> None:
        self.own_logs: Callable[[int | None], list[Any]] = lambda n: []
        self.pending: dict[int, Question] = {}  # by the number the workers are asked with
        self.answerers: set[str] = set()  # workers whose connections agreed "worker-query"
        self._numbers = itertools.count(1)

    def worker_joined(self, address: str, features: frozenset[str]) -> None:
        if "worker-query" in features:
            self.answerers.add(address)

    def ask(self, client: str, msg: WorkerQuery, workers: Iterable[str]) -> Outgoing:
        """``workers``: those registered, by address."""
        if msg.what == "center-logs":
            return [(client, WorkerQueryReply(id=msg.id, answers={"": self.own_logs(msg.n)}))]
        asked = self.answerers.intersection(workers)
        if msg.workers is not None:
            asked &= set(msg.workers)
        number = next(self._numbers)
        self.pending[number] = Question(client, msg.id, asked)
        out: Outgoing = [(address, WorkerQuery(id=number, what=msg.what, keys=msg.keys, n=msg.n))
                         for address in sorted(asked)]
        return out + self._progress(number)

    def reply(self, address: str, msg: WorkerQueryReply) -> Outgoing:
        question = self.pending.get(msg.id)
        if question is None or address not in question.waiting_for:
            return []
        question.waiting_for.discard(address)
        question.answers[address] = msg.answers.get(address)
        return self._progress(msg.id)

    def worker_left(self, address: str) -> Outgoing:
        """It will not answer: the questions waiting for it are answered without it."""
        self.answerers.discard(address)
        out: Outgoing = []
        for number, question in list(self.pending.items()):
            if address in question.waiting_for:
                question.waiting_for.discard(address)
                out += self._progress(number)
        return out

    def client_left(self, client: str) -> None:
        for number in [n for n, q in self.pending.items() if q.client == client]:
            del self.pending[number]

    def _progress(self, number: int) -> Outgoing:
        question = self.pending[number]
        if question.waiting_for:
            return []
        del self.pending[number]
        return [(question.client, WorkerQueryReply(id=question.request,
                                                   answers=question.answers))]


__all__ = ["WorkerQueries"]
