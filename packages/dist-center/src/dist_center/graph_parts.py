"""Graphs a client sends in several submits (protocol feature ``graph-parts``). No I/O.

A large graph in one submit makes the center hold all of its message at once while decoding
it; sent in parts of bounded size, each part is decoded and linked on its own. The center
forgets a submitted task that nothing wants or needs at the end of its submit, but a part's
tasks are inputs of later parts, not yet linked: so the tasks of a part marked ``more`` are
kept here, never forgotten, until the graph's last part arrives. Those wanted already, and
their inputs, run as their part arrives (feature ``graph-parts-run``): a client sends the
first tasks of a graph while it is still packing the rest, and the workers start on them.
The last part is handled as if the whole graph had come in one submit: every part's tasks
are brought back in the order they came (those running already stay as they are), and those
nothing wants or needs are forgotten. A client that leaves before its last part takes its
parts with it (see ``CenterState``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .records import TaskState


@dataclass
class PendingGraph:
    touched: list[TaskState] = field(default_factory=list)  # every task its parts named
    fresh: list[TaskState] = field(default_factory=list)  # those its parts made


class GraphParts:
    """The graphs whose last part has not come yet, by (client, graph id)."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, int | None], PendingGraph] = {}

    def add(self, client: str, graph: int | None, touched: list[TaskState],
            fresh: list[TaskState]) -> None:
        pending = self.pending.get((client, graph))
        if pending is None:
            self.pending[client, graph] = PendingGraph(touched, fresh)
        else:
            pending.touched += touched
            pending.fresh += fresh

    def finish(self, client: str, graph: int | None) -> PendingGraph | None:
        """The earlier parts of the graph whose last part ``client`` has sent, if any."""
        return self.pending.pop((client, graph), None) if self.pending else None

    def client_left(self, client: str) -> list[TaskState]:
        """The tasks the unfinished graphs of ``client`` made: none of their parts is kept."""
        made: list[TaskState] = []
        for pending in [self.pending.pop(at) for at in list(self.pending) if at[0] == client]:
            made += pending.fresh
        return made

    def kept(self) -> set[str]:
        """The keys kept for a later part (those made by a part and not forgotten since)."""
        return {ts.key for pending in self.pending.values() for ts in pending.fresh
                if ts.state != "forgotten"}

    def clear(self) -> None:
        self.pending.clear()
