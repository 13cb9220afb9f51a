"""The records that travel inside messages (a submitted task, a process's environment, a
transfer, an uploaded file, a plugin): frozen dataclasses, their annotations their wire fields.
"""
from __future__ import annotations

from dataclasses import field

from .message_base import record
from .serialize import Payload
from .wiretypes import wire_field


@record
class TaskSpec:
    """A task as a client submits it.

    ``function`` is an import path (``"math:sqrt"``) or a payload; ``args`` is a payload of
    ``[args, kwargs]`` in which ``KeyRef``s stand for the values of ``deps``.
    """

    key: str
    function: str | Payload
    args: Payload | None = None
    deps: list[str] = field(default_factory=list)
    priority: int = 0
    workers: list[str] | None = None
    allow_other_workers: bool = False
    resources: dict[str, float] | None = wire_field(default=None, minimum=0)
    retries: int = wire_field(default=0, minimum=0)
    pickled_with: str | None = wire_field(  # pickle tag ("cpython-3.11") of pickled function/args
        default=None, shared=True)
    # An actor: the function is a class (or factory) whose result stays on the worker that
    # made it, its key's value being a handle (centers announcing "actors" take these).
    actor: bool | None = wire_field(default=None, feature="actors")  # keep it as an actor
    # An actor made again after its worker died, at most this many times (none: lost with
    # its first worker).
    max_restarts: int | None = wire_field(default=None, minimum=0, feature="actors")  # times remade
    # Runs on the worker ``workers`` names and on no other (a client's ``run``): should no
    # registered worker be that one (it left, died or never joined), it errs rather than wait.
    pinned: bool | None = wire_field(default=None, feature="pinned-tasks")


@record
class Environment:
    """What a process runs, as it states it in the handshake (advisory: for checks and
    reports; a peer that states none is an older or a non-Python one)."""

    implementation: str  # sys.implementation.name of Python peers: "cpython", "pypy"
    python: str  # the language version, e.g. "3.11.7"
    packages: dict[str, str] = field(default_factory=dict)  # distribution -> version




@record
class Transfer:
    """An input of a run, fetched from the peer ``source`` before it ran (seconds since the
    epoch, on the fetching worker's clock)."""

    source: str
    start: float
    stop: float


@record
class UploadedFile:
    """A file a client uploaded for every worker, present and future (see upload-file)."""

    name: str  # the file's name, without folders
    content: Payload  # its bytes (serializer "bytes")
    load: bool = True  # a .py module is imported once written


@record
class PluginSpec:
    """A worker plugin a client registered for every worker, present and future (see
    register-plugin)."""

    name: str  # unique among the center's plugins; registering the name again replaces it
    content: Payload  # the pickled plugin, unpickled only by workers
