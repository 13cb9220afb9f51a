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
import importlib.metadata
import platform
import sys
from collections.abc import Iterable, Mapping

from .messages import Environment

# The distributions a peer reports: ours, and those whose versions change the bytes on the
# wire or in a pickle.
DIST_PACKAGES = ("dist-protocol", "dist-center", "dist-worker", "dist-client")
WIRE_PACKAGES = ("cloudpickle", "msgpack")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def local_environment(extra: tuple[str, ...] = ()) -> Environment:
    """This process; packages that are not installed are left out. (Cached: it reads package
    metadata, and installed versions do not change under a running process.)"""
    packages = {}
    for name in (*DIST_PACKAGES, *WIRE_PACKAGES, *extra):
        version = _version(name)
        if version is not None:
            packages[name] = version
    return Environment(implementation=sys.implementation.name, python=platform.python_version(),
                       packages=packages)


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
