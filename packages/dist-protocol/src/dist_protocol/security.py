"""Where tokens and TLS settings come from.

``ssl`` is imported only where a TLS context is made: ``dcenter`` reads its token before it
binds its port, and imports nothing it does not need by then.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

TOKEN_ENV = "DIST_TOKEN"
TOKEN_FILE_ENV = "DIST_TOKEN_FILE"


def load_token(token: str | None = None,
               token_file: str | os.PathLike[str] | None = None) -> str | None:
    """The shared token: explicit, else ``token_file``, else ``DIST_TOKEN``/``DIST_TOKEN_FILE``."""
    if token:
        return token
    token_file = token_file or os.environ.get(TOKEN_FILE_ENV)
    if token_file:
        with open(token_file) as file:  # as Path.read_text: the locale's encoding
            text = file.read().strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty")
        return text
    return os.environ.get(TOKEN_ENV) or None


def new_token() -> str:
    import secrets

    return secrets.token_hex(32)


def ssl_context(server: bool, cert: str | None = None, key: str | None = None,
                ca: str | None = None) -> ssl.SSLContext | None:
    """A TLS context, or None when no TLS option is given.

    With a CA, both sides must present a certificate it signed (mutual TLS), and host names are
    not checked: cluster peers are addressed by IP and the cluster CA is the trust anchor.
    Without one, a server asks for no client certificate and a client checks the server
    against the system's CAs and its host name, as a web browser would; it never skips the
    check, since an unverified channel lets anyone in the middle read and relay everything.
    """
    if not (cert or key or ca):
        return None
    import ssl

    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    ctx = ssl.create_default_context(purpose, cafile=ca)
    if ca:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
    if cert:
        ctx.load_cert_chain(cert, key)
    elif server:
        raise ValueError("a TLS server needs --tls-cert (and --tls-key)")
    return ctx
