"""Download links for the files in a chat: signed, expiring, bound to one conversation.

A link is `/widget/v1/files/<body>.<mac>`: the body names the blob (sha256), the name and sniffed
type to serve it with, the conversation and an expiry; the MAC uses its own key (derived from the
visitor-token key with its own label), so neither a visitor token nor an upload ref passes as a
link. A link is a capability (an `<a download>` cannot send the token header) and is short-lived:
the transcript hands out fresh ones every time it is read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import asdict, dataclass
from urllib.parse import quote

LINK_TTL_SECONDS = 3600
FILES_PATH = "/files/"
_INFO = b"threadline widget download link v1"
_MAX_LINK = 1500


class LinkError(Exception):
    """An altered, foreign or expired link (HTTP 403)."""


@dataclass(frozen=True)
class FileLink:
    sha256: str
    filename: str
    content_type: str
    conversation_id: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(key: bytes, body: str) -> str:
    sub = hmac.new(key, _INFO, hashlib.sha256).digest()
    return _b64(hmac.new(sub, body.encode("ascii"), hashlib.sha256).digest())


def sign_link(key: bytes, *, sha256: str, filename: str, content_type: str, conversation_id: uuid.UUID,
              now: float | None = None, ttl: int = LINK_TTL_SECONDS) -> tuple[str, int]:
    """The link's last path segment and its expiry (unix seconds)."""
    expires = int(now if now is not None else time.time()) + ttl
    link = FileLink(sha256, filename, content_type, str(conversation_id), expires)
    body = _b64(json.dumps(asdict(link), separators=(",", ":")).encode())
    return f"{body}.{_mac(key, body)}", expires


def verify_link(key: bytes, value: str, *, now: float | None = None) -> FileLink:
    if len(value) > _MAX_LINK:
        raise LinkError("this download link is not valid")
    body, _, mac = value.rpartition(".")
    if not body or not hmac.compare_digest(_mac(key, body), mac):  # constant time, before parsing
        raise LinkError("this download link is not valid")
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        link = FileLink(str(data["sha256"]), str(data["filename"]), str(data["content_type"]),
                        str(data["conversation_id"]), int(data["expires"]))
    except (ValueError, KeyError, TypeError):
        raise LinkError("this download link is not valid") from None
    if link.expires < (now if now is not None else time.time()):
        raise LinkError("this download link has expired: open the chat again for a fresh one")
    return link


def content_disposition(filename: str) -> str:
    """RFC 6266 `attachment` with an ASCII fallback and the exact name in RFC 8187 `filename*`."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback or 'attachment'}\"; filename*=UTF-8''{quote(filename, safe='')}"
