"""What a process runs -- Python and package versions -- as it states it in ``hello``/``welcome``.
No I/O beyond reading installed package metadata.

Functions and arguments pickled by value are Python bytecode, which changes between Python
minor versions: a worker that unpickles code from another minor version can crash or compute
a wrong result. So every peer states its environment in the handshake, a task whose payloads
are pickles carries the ``pickle_tag`` of the process that made them, and nobody unpickles
code tagged for another interpreter.
"""
from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterable, Mapping

from .messages import Environment

# The distributions a peer reports: ours, and those whose versions change the bytes on the
# wire or in a pickle.
DIST_PACKAGES = ("dist-protocol", "dist-center", "dist-worker", "dist-client")
WIRE_PACKAGES = ("cloudpickle", "msgpack")


def _version(distribution: str) -> str | None:
    """The installed version, as ``importlib.metadata.version`` finds it; read from the name of
    the ``.dist-info`` folder where that is where it would find it (the name holds the version),
    since importing ``importlib.metadata`` costs a program's start-up more than all the rest of
    this module; from ``importlib.metadata`` otherwise (eggs, zip files)."""
    found = _version_from_folder_name(distribution)
    if found is not _UNKNOWN:
        return found
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


_UNKNOWN = "?"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _version_from_folder_name(distribution: str) -> str | None:
    """The version in the name of the first ``NAME-VERSION.dist-info`` folder on ``sys.path``;
    None when no entry holds the distribution; ``_UNKNOWN`` when the first that may hold it is
    not one such folder (an egg, a zip file, two candidates: ``importlib.metadata`` decides)."""
    wanted = _normalized(distribution)
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return _UNKNOWN  # a zip file on the path
            continue
        names = _metadata_folders(folder).get(wanted)
        if not names:
            continue
        stem, _, suffix = names[0].rpartition(".")
        _, dash, version = stem.partition("-")
        if len(names) > 1 or suffix != "dist-info" or not dash or "-" in version:
            return _UNKNOWN
        return version
    return None


@functools.cache
def _metadata_folders(folder: str) -> dict[str, list[str]]:
    """``{normalized project name: [its .dist-info/.egg-info entries]}`` in ``folder``."""
    found: dict[str, list[str]] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    for name in names:
        if name.endswith((".dist-info", ".egg-info")):
            project = name.rpartition(".")[0].partition("-")[0]
            found.setdefault(_normalized(project), []).append(name)
    return found


@functools.cache
def local_environment(extra: tuple[str, ...] = ()) -> Environment:
    """This process; packages that are not installed are left out. (Cached: it reads package
    metadata, and installed versions do not change under a running process.)"""
    packages = {}
    for name in (*DIST_PACKAGES, *WIRE_PACKAGES, *extra):
        version = _version(name)
        if version is not None:
            packages[name] = version
    return Environment(implementation=sys.implementation.name, python=python_version(),
                       packages=packages)


def python_version() -> str:
    """``platform.python_version()`` (``"3.11.7"``, ``"3.13.0rc1"``): the first word of
    ``sys.version``, read without importing ``platform``, which costs every program's start
    more than the rest of this module."""
    return sys.version.split()[0]


def pickle_tag(environment: Environment | None = None) -> str:
    """``"cpython-3.11"``: what must match for a pickle of code to be read safely, the
    implementation and the Python minor version (of this process by default)."""
    env = environment or local_environment()
    minor = ".".join(env.python.split(".")[:2])
    return f"{env.implementation}-{minor}"


def describe(environment: Environment | None) -> str:
    """``"CPython 3.11.7"``, for messages to people."""
    if environment is None:
        return "an unknown Python (the peer did not say)"
    names = {"cpython": "CPython", "pypy": "PyPy"}
    return f"{names.get(environment.implementation, environment.implementation)} " \
           f"{environment.python}"


def describe_tag(tag: str) -> str:
    """``"cpython-3.11"`` -> ``"CPython 3.11"``."""
    implementation, _, minor = tag.partition("-")
    names = {"cpython": "CPython", "pypy": "PyPy"}
    return f"{names.get(implementation, implementation)} {minor}"


def package_differences(environments: Mapping[str, Environment | None],
                        packages: Iterable[str] = (*DIST_PACKAGES, *WIRE_PACKAGES)
                        ) -> dict[str, dict[str, str]]:
    """``{package: {who: version}}`` for each package whose version differs between the
    processes that report it (``environments``: who -> environment)."""
    out: dict[str, dict[str, str]] = {}
    for package in packages:
        seen = {who: env.packages[package] for who, env in environments.items()
                if env is not None and package in env.packages}
        if len(set(seen.values())) > 1:
            out[package] = seen
    return out
