"""The messages a step of the center makes, in the order it makes them.

What the center's state decides to tell workers and clients during one step goes here and
leaves in one piece at the step's end (``take``): the server writes each connection's share
as one batch. Two things are settled on the way:

* a free-keys to a worker joins the step's free-keys to that worker while that stays
  harmless (``free``), so a release of a map's thousand keys is one message, not a thousand;
* messages to the center's own holders (``sharing``) are not sent; a fired-and-forgotten
  task's end is noted instead (``fired_and_ended``), for the state to let go of it.
"""
from __future__ import annotations

from dist_protocol.messages import ComputeTask, FreeKeys, KeyInMemory, KeyLost, Message, TaskErred

from .sharing import FIRE_AND_FORGET

Outgoing = list[tuple[str, Message]]


class Outbox:
    __slots__ = ("messages", "open_frees", "fired_and_ended")

    def __init__(self) -> None:
        # (to, message), in the order made. The center's hottest paths (``feeding``,
        # ``blocks``) append compute-tasks here themselves, as ``send`` would.
        self.messages: Outgoing = []
        # Per worker, the step's free-keys message more keys may join, and the keys named
        # since by what was sent to that worker after it (see ``free``); a compute-task
        # appended without ``send`` adds its keys here itself.
        self.open_frees: dict[str, tuple[FreeKeys, set[str]]] = {}
        self.fired_and_ended: list[str] = []  # fired and forgotten tasks that ended this step

    def take(self) -> Outgoing:
        """The messages of the step that ends, in the order they were made."""
        out, self.messages = self.messages, []
        self.open_frees.clear()
        return out

    def send(self, to: str, message: Message) -> None:
        if to[:1] == "<":  # one of the center's own holders (see sharing): not sent
            if to == FIRE_AND_FORGET and type(message) in (KeyInMemory, TaskErred, KeyLost):
                self.fired_and_ended.append(message.key)  # type: ignore[attr-defined]
            return
        self.messages.append((to, message))
        open_frees = self.open_frees
        if open_frees and to in open_frees:
            if type(message) is ComputeTask:
                named = open_frees[to][1]
                named.add(message.key)
                named.update(message.who_has)
            else:
                del open_frees[to]

    def free(self, address: str, key: str) -> None:
        """Tell a worker to drop ``key``: in the step's free-keys message to that worker if
        only compute-tasks that name the key neither as their task nor as an input were sent
        to it since (the worker drops it before reading them, which changes nothing for
        them), else in a new one. Releasing a map frees thousands of keys in one step; a
        chain's step frees an input before each link it sends, and the links then go in a
        row, as one column block."""
        open_free = self.open_frees.get(address)
        if open_free is not None and key not in open_free[1]:
            open_free[0].keys.append(key)
            return
        message = FreeKeys(keys=[key])
        self.messages.append((address, message))
        self.open_frees[address] = (message, set())

    def take_fired_and_ended(self) -> list[str]:
        """The fired-and-forgotten tasks that ended since the last call."""
        ended, self.fired_and_ended = self.fired_and_ended, []
        return ended
