"""Addresses: ``host:port``, ``tcp://host:port``, ``tls://host:port``, ``[::1]:port``."""
from __future__ import annotations

import ipaddress

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


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (where running without a token is safe)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
