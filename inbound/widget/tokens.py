"""Visitor tokens: `v1.<conversation>.<inbox>.<version>.<expires>.<mac>`, HMAC-SHA256 over the rest.

The key is derived (HKDF, its own `info`) from THREADLINE_SECRET_KEY or the data dir's key file,
so it never equals the key that encrypts stored secrets. Tokens travel in a header, never a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.crypto import KEY_FILE, load_or_create_key_file
from core.settings import Settings

TOKEN_HEADER = "X-Threadline-Visitor"
TOKEN_TTL_SECONDS = 7 * 24 * 3600
_INFO = b"threadline widget visitor token v1"


class TokenError(Exception):
    """Forged, malformed or expired: the visitor starts over (HTTP 401)."""


@dataclass(frozen=True)
class VisitorClaims:
    conversation_id: uuid.UUID
    inbox_id: uuid.UUID
    version: int
    expires: int


def token_key(settings: Settings) -> bytes:
    material = (
        settings.secret_key.get_secret_value()
        if settings.secret_key is not None
        else load_or_create_key_file(settings.data_dir / KEY_FILE)
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material.encode())


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(key: bytes, claims: VisitorClaims) -> str:
    body = f"v1.{claims.conversation_id.hex}.{claims.inbox_id.hex}.{claims.version}.{claims.expires}"
    return f"{body}.{_mac(key, body)}"


def issue(key: bytes, *, conversation_id: uuid.UUID, inbox_id: uuid.UUID, version: int,
          ttl: int = TOKEN_TTL_SECONDS, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + ttl
    return sign(key, VisitorClaims(conversation_id, inbox_id, version, expires))


def verify(key: bytes, token: str | None, *, now: float | None = None) -> VisitorClaims:
    if not token or len(token) > 300:
        raise TokenError("no visitor token")
    body, _, mac = token.rpartition(".")
    if not hmac.compare_digest(_mac(key, body), mac):  # constant time, before parsing anything
        raise TokenError("bad signature")
    parts = body.split(".")
    if len(parts) != 5 or parts[0] != "v1":
        raise TokenError("malformed token")
    try:
        claims = VisitorClaims(uuid.UUID(hex=parts[1]), uuid.UUID(hex=parts[2]), int(parts[3]), int(parts[4]))
    except ValueError:
        raise TokenError("malformed token") from None
    if claims.expires < (now if now is not None else time.time()):
        raise TokenError("expired")
    return claims
