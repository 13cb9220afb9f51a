"""The user's script as a module: ``__main__``, or ``__mp_main__`` in a ``multiprocessing``
child started by ``spawn`` or ``forkserver``, which runs the script again under that name.

No worker can import either, so what the script defines travels by value. cloudpickle does
that for ``__main__`` by itself, but takes ``__mp_main__`` for an importable module (it is in
the child's ``sys.modules``) and would send its functions and classes by a name the workers
cannot resolve; the child's script is registered with it to travel by value instead.
"""
from __future__ import annotations

import sys

SCRIPT_MODULES = ("__main__", "__mp_main__")
SPAWNED_SCRIPT = "__mp_main__"


def send_spawned_script_by_value() -> None:
    """In a child that runs the script as ``__mp_main__``: have it travel by value."""
    module = sys.modules.get(SPAWNED_SCRIPT)
    if module is None or getattr(module, "__name__", None) != SPAWNED_SCRIPT:
        return  # (nearly always: cloudpickle is then not imported for it)
    import cloudpickle
    if SPAWNED_SCRIPT not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(module)


__all__ = ["SCRIPT_MODULES", "send_spawned_script_by_value"]
