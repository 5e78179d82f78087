"""Signed download links to one customer attachment: `v1.<kid>.<tenant>.<attachment>.<expires>.<mac>`.

The MAC is HMAC-SHA256 over everything before it, with a key derived (HKDF, its own label) from
THREADLINE_SECRET_KEY or the data dir's key file, so it never equals a widget or secret-box key.
`kid` names that key (a fingerprint), so a changed secret invalidates old links by name, and a
verifier may hold a retired key next to the current one. The MAC is compared as text in constant
time before anything else is parsed: an altered character anywhere (tenant, attachment, expiry,
kid, MAC) is refused the same way, and a link names exactly one tenant's attachment, so a link of
tenant A cannot fetch tenant B's file even when B's attachment id is known.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.crypto import KEY_FILE, load_or_create_key_file
from core.settings import Settings

VERSION = "v1"
_INFO = b"threadline attachment link v1"
_MAX_LINK = 200  # a real link is ~140 characters; anything longer is refused before any work
_BODY = re.compile(r"v1\.([0-9a-f]{8})\.([0-9a-f]{32})\.([0-9a-f]{32})\.([0-9]{1,12})")


class LinkError(Exception):
    """An altered, foreign, unknown-key or expired link (HTTP 403)."""


@dataclass(frozen=True)
class LinkClaims:
    tenant_id: uuid.UUID
    attachment_id: uuid.UUID
    expires: int


@dataclass(frozen=True)
class LinkKey:
    kid: str
    secret: bytes = b""

    @classmethod
    def derive(cls, material: str | bytes) -> LinkKey:
        raw = material.encode() if isinstance(material, str) else material
        secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)
        return cls(hashlib.sha256(b"kid:" + secret).hexdigest()[:8], secret)

    def __repr__(self) -> str:
        return f"LinkKey(kid={self.kid!r}, <secret hidden>)"


def _mac(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(key: LinkKey, *, tenant_id: uuid.UUID, attachment_id: uuid.UUID, ttl_seconds: int,
         now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + ttl_seconds
    body = f"{VERSION}.{key.kid}.{tenant_id.hex}.{attachment_id.hex}.{expires}"
    return f"{body}.{_mac(key.secret, body)}"


def verify(keys: Mapping[str, LinkKey], link: str, *, now: float | None = None) -> LinkClaims:
    """The claims of a link we signed and that has not expired; LinkError otherwise."""
    if len(link) > _MAX_LINK or not link.isascii():
        raise LinkError("this download link is not valid")
    body, _, mac = link.rpartition(".")
    kid = body.split(".")[1] if body.count(".") == 4 else ""
    key = keys.get(kid)
    # Always one HMAC and one constant-time comparison, whether or not the key id is known.
    expected = _mac(key.secret if key else b"\0" * 32, body)
    if not hmac.compare_digest(expected.encode(), mac.encode()) or key is None:
        raise LinkError("this download link is not valid")
    parts = _BODY.fullmatch(body)
    if parts is None:
        raise LinkError("this download link is not valid")
    claims = LinkClaims(uuid.UUID(parts.group(2)), uuid.UUID(parts.group(3)), int(parts.group(4)))
    if claims.expires < (now if now is not None else time.time()):
        raise LinkError("this download link has expired: ask for the file again")
    return claims


DOWNLOAD_PATH = "/attachments/"  # served by admin_api/routes/attachment_links.py


def link_key(settings: Settings) -> LinkKey:
    """The current key, from THREADLINE_SECRET_KEY or the data dir's key file (created if absent)."""
    material = (settings.secret_key.get_secret_value() if settings.secret_key is not None
                else load_or_create_key_file(settings.data_dir / KEY_FILE))
    return LinkKey.derive(material)


def download_url(settings: Settings, key: LinkKey, *, tenant_id: uuid.UUID, attachment_id: uuid.UUID,
                 now: float | None = None) -> str:
    """The absolute link an agent clicks (THREADLINE_PUBLIC_URL + path), valid for the configured days."""
    link = sign(key, tenant_id=tenant_id, attachment_id=attachment_id,
                ttl_seconds=settings.attachment_link_days * 86400, now=now)
    return f"{settings.public_url.rstrip('/')}{DOWNLOAD_PATH}{link}"


def download_urls(settings: Settings, *, tenant_id: uuid.UUID, attachment_ids: list[uuid.UUID]) -> list[str]:
    """One fresh link per attachment (what a surface posts under a customer's message)."""
    if not attachment_ids:
        return []
    key = link_key(settings)
    return [download_url(settings, key, tenant_id=tenant_id, attachment_id=a) for a in attachment_ids]
