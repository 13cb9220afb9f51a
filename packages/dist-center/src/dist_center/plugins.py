"""Worker plugins clients registered (``register-plugin``): kept as pickled bytes, never
unpickled here, and handed to each worker as it registers, so that workers joining later set
them up too.

Bounded, as the center keeps them in memory (and, with a state directory, on disk): a plugin
of the same name replaces the older (unless the registration is idempotent), and one that
would pass the bounds is refused with the reason, changing nothing.
"""
from __future__ import annotations

from dist_protocol.messages import (PluginSpec, RegisterPlugin, RegisterPluginReply,
                                    UnregisterPlugin, UnregisterPluginReply)

MAX_PLUGINS = 100
MAX_BYTES = 64 * 2**20
# The name the snapshot of the durable state sends the kept plugins under (see ``snapshot``).
PLUGINS_HOLDER = "<plugins>"


class Plugins:
    def __init__(self, max_plugins: int = MAX_PLUGINS, max_bytes: int = MAX_BYTES) -> None:
        self.max_plugins = max_plugins
        self.max_bytes = max_bytes
        self.plugins: dict[str, PluginSpec] = {}  # by name, oldest first

    @property
    def nbytes(self) -> int:
        return sum(plugin.content.nbytes for plugin in self.plugins.values())

    def register(self, msg: RegisterPlugin) -> RegisterPluginReply:
        plugin = msg.plugin
        if not plugin.name:
            return RegisterPluginReply(id=msg.id, error="a worker plugin needs a name")
        if plugin.content.serializer != "pickle":
            return RegisterPluginReply(id=msg.id, error=(
                f"{plugin.name}: a worker plugin is a 'pickle' payload, not "
                f"{plugin.content.serializer!r}"))
        replaced = self.plugins.get(plugin.name)
        if replaced is not None and msg.idempotent:
            return RegisterPluginReply(id=msg.id, kept=False)
        if len(self.plugins) + (replaced is None) > self.max_plugins:
            return RegisterPluginReply(id=msg.id, error=(
                f"{plugin.name}: the center keeps at most {self.max_plugins} worker plugins "
                f"(unregister some, or register under names already used)"))
        size = self.nbytes - (replaced.content.nbytes if replaced else 0) + plugin.content.nbytes
        if size > self.max_bytes:
            return RegisterPluginReply(id=msg.id, error=(
                f"{plugin.name}: the center keeps at most {self.max_bytes} bytes of worker "
                f"plugins, and this one ({plugin.content.nbytes} bytes pickled) would take "
                f"them to {size} (load large data in setup rather than pickling it in)"))
        self.plugins.pop(plugin.name, None)  # the newest last: workers set up in this order
        self.plugins[plugin.name] = plugin
        return RegisterPluginReply(id=msg.id)

    def unregister(self, msg: UnregisterPlugin) -> UnregisterPluginReply:
        if self.plugins.pop(msg.name, None) is None:
            return UnregisterPluginReply(id=msg.id,
                                         error=f"there is no worker plugin named {msg.name!r}")
        return UnregisterPluginReply(id=msg.id)

    def all(self) -> list[PluginSpec]:
        return list(self.plugins.values())
