"""``rebalance``: move data between workers until each holds about as many bytes.

The center decides from what it knows: the bytes of every key each worker holds (``nbytes``
per worker, from the sizes workers reported). ``plan`` is pure: the workers above the mean
give their oldest keys to the workers furthest below it, a key at a time, while a move brings
the two closer and the recipient stays below the share of its memory limit past which it
would spill. A key some task is computing from, an actor's handle, or one the recipient holds
already does not move.

A move is a copy then a free: the recipient fetches the key from the sender as for
``replicate`` (``acquire-replicas``); once it reports holding it, the sender's copy is freed.
``Rebalances.progress`` follows every step of the center and answers each request once its
moves are done or failed (a worker left, the copy did not arrive in ``COPY_TIMEOUT``, a task
started reading the key meanwhile: the key stays where it was, perhaps with a second copy).
"""
from __future__ import annotations

from dataclasses import dataclass

from dist_protocol.messages import AcquireReplicas, Rebalance, RebalanceReply

from .records import TaskState, WorkerInfo
from .view import Center

# Workers within this share of the mean are even enough: nothing moves to or from them.
TOLERANCE = 0.05
# A recipient is given no more than this share of its memory limit (a worker spills what it
# holds past it: dworker's default target fraction).
RECIPIENT_MAX_FRACTION = 0.6
COPY_TIMEOUT = 60.0  # seconds for a recipient to report the copy before the move fails


@dataclass(slots=True)
class Move:
    key: str
    sender: str
    recipient: str
    nbytes: int


def _movable(state: Center, ts: TaskState, allowed: set[str] | None) -> bool:
    if ts.state != "memory" or ts.actor_host is not None:
        return False
    if allowed is not None and ts.key not in allowed:
        return False
    # A task reading it may have been told where it is: it stays there meanwhile.
    return not any(state.tasks[d].state in ("processing", "waiting", "queued")
                   for d in ts.dependents if d in state.tasks)


def plan(state: Center, pool: list[WorkerInfo], allowed: set[str] | None) -> list[Move]:
    """The moves that even out the bytes held by ``pool`` (only keys in ``allowed``, if
    given); nothing changes until they are carried out."""
    if len(pool) < 2:
        return []
    load = {w.address: w.nbytes for w in pool}
    mean = sum(load.values()) / len(pool)
    slack = mean * TOLERANCE
    room = {w.address: (w.memory_limit * RECIPIENT_MAX_FRACTION if w.memory_limit
                        else float("inf")) for w in pool}
    moves: list[Move] = []
    for sender in sorted(pool, key=lambda w: (-load[w.address], w.address)):
        if load[sender.address] - mean <= slack:
            break
        keys = sorted((state.tasks[key] for key in sender.has_what if key in state.tasks),
                      key=lambda ts: ts.order)  # oldest first: the least likely to be read soon
        for ts in keys:
            if load[sender.address] - mean <= slack:
                break
            if not _movable(state, ts, allowed):
                continue
            recipients = [w for w in pool if w.address not in ts.who_has
                          and load[w.address] < mean - slack
                          and load[w.address] + ts.nbytes <= room[w.address]]
            if not recipients:
                continue
            recipient = min(recipients, key=lambda w: (load[w.address], w.address))
            if ts.nbytes >= load[sender.address] - load[recipient.address]:
                continue  # it would leave the two no closer
            moves.append(Move(ts.key, sender.address, recipient.address, ts.nbytes))
            load[sender.address] -= ts.nbytes
            load[recipient.address] += ts.nbytes
    return moves


class Request:
    __slots__ = ("client", "id", "moves", "since", "moved", "failed")

    def __init__(self, client: str, request_id: int, moves: list[Move], since: float,
                 failed: list[str]):
        self.client = client
        self.id = request_id
        self.moves = {move.key: move for move in moves}  # not done yet
        self.since = since
        self.moved: list[str] = []
        self.failed = failed


class Rebalances:
    def __init__(self) -> None:
        self.requests: list[Request] = []

    def start(self, state: Center, client: str, msg: Rebalance) -> None:
        running = [w for w in state.workers.values() if w.status == "running"]
        pool = running
        if msg.workers is not None:
            wanted = {state.names.get(name, name) for name in msg.workers}
            unknown = sorted(name for name in msg.workers
                             if state.names.get(name, name) not in state.workers)
            if unknown:
                state.send(client, RebalanceReply(id=msg.id, error=(
                    f"no worker has the name or address {', '.join(map(repr, unknown))}")))
                return
            pool = [w for w in running if w.address in wanted]
        allowed = None if msg.keys is None else set(msg.keys)
        absent = [] if allowed is None else sorted(
            key for key in allowed
            if key not in state.tasks or state.tasks[key].state != "memory")
        moves = plan(state, pool, allowed)
        request = Request(client, msg.id, moves, state.now, absent)
        orders: dict[str, AcquireReplicas] = {}
        for move in moves:
            order = orders.setdefault(move.recipient, AcquireReplicas(who_has={}, nbytes={}))
            order.who_has[move.key] = [move.sender]
            order.nbytes[move.key] = move.nbytes
        for recipient, order in orders.items():
            state.send(recipient, order)
        self.requests.append(request)

    def client_left(self, client: str) -> None:
        """Its moves go on; nobody is told the outcome."""
        for request in self.requests:
            if request.client == client:
                request.client = ""

    def progress(self, state: Center) -> None:
        """After every step of the center: free what arrived, give up on what did not."""
        if not self.requests:
            return
        for request in list(self.requests):
            for key, move in list(request.moves.items()):
                outcome = self._outcome(state, move, request.since)
                if outcome is None:
                    continue
                del request.moves[key]
                (request.moved if outcome else request.failed).append(key)
            if not request.moves:
                self.requests.remove(request)
                if request.client:
                    state.send(request.client, RebalanceReply(
                        id=request.id, moved=request.moved, failed=request.failed))

    @staticmethod
    def _outcome(state: Center, move: Move, since: float) -> bool | None:
        """True: moved (the sender's copy freed); False: failed; None: still copying."""
        ts = state.tasks.get(move.key)
        sender = state.workers.get(move.sender)
        recipient = state.workers.get(move.recipient)
        if ts is None or ts.state != "memory" or sender is None or recipient is None:
            return False
        if move.recipient not in ts.who_has:
            return None if state.now - since < COPY_TIMEOUT else False
        if move.sender not in ts.who_has:
            return True  # (freed there meanwhile, for its own reasons)
        if not _movable(state, ts, None):
            return False  # read now by a task that may have been sent the sender's address
        state.drop_replica(ts, sender)
        return True
