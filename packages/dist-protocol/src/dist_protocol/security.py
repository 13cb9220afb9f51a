"""Where tokens and TLS settings come from."""
from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path

TOKEN_ENV = "DIST_TOKEN"
TOKEN_FILE_ENV = "DIST_TOKEN_FILE"


def load_token(token: str | None = None, token_file: str | os.PathLike | None = None) -> str | None:
    """The shared token: explicit, else ``token_file``, else ``DIST_TOKEN``/``DIST_TOKEN_FILE``."""
    if token:
        return token
    token_file = token_file or os.environ.get(TOKEN_FILE_ENV)
    if token_file:
        text = Path(token_file).read_text().strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty")
        return text
    return os.environ.get(TOKEN_ENV) or None


def new_token() -> str:
    return secrets.token_hex(32)


def ssl_context(server: bool, cert: str | None = None, key: str | None = None,
                ca: str | None = None) -> ssl.SSLContext | None:
    """A TLS context, or None when no TLS option is given. A CA turns on mutual verification."""
    if not (cert or key or ca):
        return None
    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    ctx = ssl.create_default_context(purpose, cafile=ca)
    ctx.check_hostname = False  # cluster peers are addressed by IP; the CA is the trust anchor
    if ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif not server:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    elif server:
        raise ValueError("a TLS server needs --tls-cert (and --tls-key)")
    return ctx
