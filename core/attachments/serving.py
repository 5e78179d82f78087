"""How a stored attachment is served to a browser: always a download, never rendered by us.

The type comes from the bytes, never from the sender's name or Content-Type (both are the sender's
choice). Markup (HTML, SVG, XML) and anything unrecognised is `application/octet-stream`; with
`Content-Disposition: attachment` and `nosniff` a browser saves it instead of running it.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 8192
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),  # also docx/xlsx/odt: a download either way
    (b"\x1f\x8b", "application/gzip"),
    (b"%!PS", "application/postscript"),
)
_MARKUP = (b"<", )  # any text opening with a tag: HTML, SVG, XML, or an HTML fragment


def sniff(head: bytes) -> str:
    """A safe content type from the first bytes of a file (at most SNIFF_BYTES are looked at)."""
    head = head[:SNIFF_BYTES]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0c")
    if text.startswith(_MARKUP) or b"<html" in text[:512].lower() or b"<svg" in text[:512].lower():
        return OCTET_STREAM
    if b"\x00" not in head and _utf8_prefix(head):
        return "text/plain; charset=utf-8"
    return OCTET_STREAM


def _utf8_prefix(head: bytes) -> bool:
    for trim in range(4):  # the cut may split a character
        try:
            head[: len(head) - trim].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def content_disposition(filename: str) -> str:
    """RFC 6266 `attachment`: an ASCII fallback `filename` and the exact name in RFC 5987/8187 `filename*`.

    Path separators and control characters are dropped first, so no browser saves outside its folder
    and no header can be split."""
    name = "".join(c for c in unicodedata.normalize("NFC", filename)
                   if c not in "/\\" and unicodedata.category(c)[0] != "C").strip(" .") or "attachment"
    name = name[:200]
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
