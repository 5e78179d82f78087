"""Visitor uploads: type sniffed from the bytes, stored content-addressed, referenced by a signed ref.

The upload answers a ref: the blob's sha256, size, sniffed type and name, bound to the visitor's
conversation and an expiry, MAC'd with a key derived from the visitor-token key. The next message
carries the refs; nothing is written to Postgres until then, so an abandoned upload is only an
unreferenced blob (the same bytes uploaded twice are one file).

The client's Content-Type and file name extension are never trusted: a browser's type comes from
the extension, which the visitor chooses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import unicodedata
import uuid
from dataclasses import asdict, dataclass

UPLOAD_MAX_BYTES = 10 * 1024 * 1024  # a screenshot or a PDF invoice; larger files go by mail
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the one file
MAX_PER_MESSAGE = 5
REF_TTL_SECONDS = 3600
OCTET_STREAM = "application/octet-stream"
_SNIFF_BYTES = 8192
_INFO = b"threadline widget upload ref v1"


class UploadRefusedError(Exception):
    """The content is of a kind we never accept (HTTP 415)."""


class UploadRefError(Exception):
    """A forged, foreign or expired ref (HTTP 400)."""


# Executables and scripts: refused outright, whatever name they came with.
_EXECUTABLE = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "a Linux executable"),
    (b"\xfe\xed\xfa\xce", "a macOS executable"), (b"\xfe\xed\xfa\xcf", "a macOS executable"),
    (b"\xce\xfa\xed\xfe", "a macOS executable"), (b"\xcf\xfa\xed\xfe", "a macOS executable"),
    (b"\xca\xfe\xba\xbe", "a macOS or Java executable"),
    (b"#!", "a script"),
)
_IMAGES_AND_DOCS = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),  # also docx/xlsx/odt: served as a download either way
)
# Markup a browser would render (and run) if the file were ever opened inline: HTML, SVG, XML.
# The WHATWG MIME Sniffing "HTML" rule: one of these tags first, then a space or ">".
_MARKUP_TAGS = (b"!doctype html", b"html", b"head", b"body", b"script", b"iframe", b"svg", b"?xml", b"!--",
                b"object", b"embed", b"a", b"img", b"style", b"title", b"div", b"p", b"br", b"table", b"font", b"h1")


def sniff(data: bytes) -> str:
    """The content type from the bytes alone; raises UploadRefusedError for executables and markup."""
    head = data[:_SNIFF_BYTES]
    for magic, what in _EXECUTABLE:
        if head.startswith(magic):
            raise UploadRefusedError(f"{what} cannot be sent here")
    for magic, kind in _IMAGES_AND_DOCS:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0c").lower()
    if any(text.startswith(b"<" + tag) and text[len(tag) + 1:len(tag) + 2] in (b" ", b">", b"\n", b"\t", b"-")
           for tag in _MARKUP_TAGS):
        raise UploadRefusedError("web pages and SVG images cannot be sent here")
    if b"\x00" not in head and _is_utf8_prefix(head):
        return "text/plain"
    return OCTET_STREAM


def _is_utf8_prefix(head: bytes) -> bool:
    # The cut at _SNIFF_BYTES may split a character: allow up to 3 dangling bytes.
    for trim in range(4):
        try:
            head[: len(head) - trim].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def clean_filename(name: str | None) -> str:
    """Display only (never a path): the last path segment, no control characters, bounded."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C").strip()
    return base[:200] or "attachment"


@dataclass(frozen=True)
class UploadRef:
    sha256: str
    size: int
    content_type: str
    filename: str
    conversation_id: str
    expires: int

    def public(self) -> dict[str, str | int]:
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size}


def _mac(key: bytes, body: str) -> str:
    sub = hmac.new(key, _INFO, hashlib.sha256).digest()  # its own key: a ref can never pass as a token
    return base64.urlsafe_b64encode(hmac.new(sub, body.encode("ascii"), hashlib.sha256).digest()).rstrip(b"=").decode()


def sign_ref(key: bytes, ref: UploadRef) -> str:
    body = base64.urlsafe_b64encode(json.dumps(asdict(ref), separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{body}.{_mac(key, body)}"


def make_ref(key: bytes, *, sha256: str, size: int, content_type: str, filename: str,
             conversation_id: uuid.UUID, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + REF_TTL_SECONDS
    return sign_ref(key, UploadRef(sha256, size, content_type, filename, str(conversation_id), expires))


def verify_ref(key: bytes, value: str, *, conversation_id: uuid.UUID, now: float | None = None) -> UploadRef:
    if len(value) > 2000:
        raise UploadRefError("malformed attachment reference")
    body, _, mac = value.rpartition(".")
    if not body or not hmac.compare_digest(_mac(key, body), mac):
        raise UploadRefError("attachment reference not ours")
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        ref = UploadRef(str(data["sha256"]), int(data["size"]), str(data["content_type"]), str(data["filename"]),
                        str(data["conversation_id"]), int(data["expires"]))
    except (ValueError, KeyError, TypeError):
        raise UploadRefError("malformed attachment reference") from None
    if ref.conversation_id != str(conversation_id):
        raise UploadRefError("attachment reference from another conversation")
    if ref.expires < (now if now is not None else time.time()):
        raise UploadRefError("attachment reference expired: upload the file again")
    return ref
