"""Addresses: ``host:port``, ``tcp://host:port``, ``tls://host:port``, ``[::1]:port``."""
from __future__ import annotations

import functools
import socket
import struct
import sys

SCHEMES = ("tcp", "tls")


def parse_address(address: str, default_port: int | None = None) -> tuple[str, str, int]:
    """``(scheme, host, port)``; raises ``ValueError`` with the address in the message."""
    scheme = "tcp"
    rest = address.strip()
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r} in {address!r}; use tcp:// or tls://")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:
        host, port_text = rest, ""
    if not port_text:
        if default_port is None:
            raise ValueError(f"address {address!r} has no port")
        return scheme, host or "127.0.0.1", default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad port in address {address!r}") from None
    if not 0 <= port < 65536:
        raise ValueError(f"port out of range in address {address!r}")
    return scheme, host or "127.0.0.1", port


def format_address(host: str, port: int, scheme: str = "tcp") -> str:
    hostpart = f"[{host}]" if ":" in host else host
    prefix = "" if scheme == "tcp" else f"{scheme}://"
    return f"{prefix}{hostpart}:{port}"


@functools.lru_cache(maxsize=1024)  # asked at every connection's handshake, of few hosts
def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (where running without a token is safe)."""
    if host in ("localhost", "127.0.0.1", "::1"):
        return True
    try:
        return _is_loopback_ip(host)
    except ValueError:
        return False


def _is_loopback_ip(address: str) -> bool:
    """``ipaddress.ip_address(address).is_loopback`` (ValueError for no IP address): imported
    here, as most programs only ever ask about 127.0.0.1, and before ``dcenter`` binds its
    port every module counts."""
    import ipaddress

    return ipaddress.ip_address(address).is_loopback


WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# An address of the range set aside for documentation: no host has it, so a route towards it is
# the one to the wider network (connecting a UDP socket sends no packet).
_ANYWHERE = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def local_address_towards(host: str) -> str:
    """The local IP this machine would use to reach ``host`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def reachable_host(bound_host: str) -> str:
    """What to tell others for a server bound to ``bound_host``: itself, unless it is a
    wildcard (``0.0.0.0``, ``::``), which no one can connect to; then this machine's address
    on the route outwards, or on its first interface that is up, or loopback if it has none."""
    if bound_host not in WILDCARD_HOSTS:
        return bound_host
    families = [socket.AF_INET6, socket.AF_INET] if bound_host == "::" else [socket.AF_INET]
    for family in families:
        address = local_address_towards(_ANYWHERE[family])
        if not _is_loopback_ip(address):
            return address
    for address in _interface_addresses():
        if not _is_loopback_ip(address):
            return address
    return "127.0.0.1"


def _interface_addresses() -> list[str]:
    """IPv4 addresses of this machine's interfaces, in interface order (Linux; else none)."""
    found: list[str] = []
    try:
        import fcntl
        names = [name for _, name in socket.if_nameindex()]
    except (ImportError, OSError):
        return found
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # down, or no IPv4 address
            found.append(socket.inet_ntoa(reply[20:24]))
    return found


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket | None:
    """A socket listening on ``host:port``, bound as the event loop's server would bind it, or
    None where that would take more than one socket (a name with IPv4 and IPv6 addresses, all
    interfaces of both families): the caller then lets the server bind. ``OSError`` when the
    address cannot be bound.

    A program that binds first and imports the rest of itself afterwards is reachable sooner:
    peers connect at once, and the kernel holds their connections until it serves them.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    places = {(family, tuple(address)) for family, _, _, _, address in infos}
    if len(places) != 1:
        return None
    family, address = places.pop()
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
