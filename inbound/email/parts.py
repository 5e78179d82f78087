"""Walk a parsed MIME tree into body texts and attachments.

Which leaf is body and which is attachment follows mail-parser's rules so the two
agree: a named part or ``Content-Disposition: attachment`` is an attachment (a named
*inline* text part is both, as Apple Mail shows it), text/plain and text/html are body,
anything else is an attachment. Charset decoding is ours (``charsets.py``).
"""

from __future__ import annotations

import binascii
import mimetypes
import posixpath
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from inbound.email.charsets import decode_bytes, sniff_html_charset
from inbound.email.headers import decode_header_value, single_line
from inbound.email.model import ParsedAttachment

# Deeper nesting than this is an attack, not mail (mail-parser guards the parser
# itself; this guards our own walk).
MAX_DEPTH = 64
# Real mail has a few dozen parts and attachments (the largest in our corpora: 30
# parts, 8 attachments); beyond these it is an attack on whoever walks the tree.
# Parts past MAX_PARTS are not walked; attachments past MAX_ATTACHMENTS are dropped
# (the raw message is stored whole elsewhere). Both are recorded as defects.
MAX_PARTS = 1000
MAX_ATTACHMENTS = 250
_MIME_TYPES = mimetypes.MimeTypes()  # built-in table only: same names on every machine
# "begin" and "end" lines are looked up separately: the single pattern
# "^begin …\n(.*?)^end" rescanned the rest of the text from every unterminated
# "begin" line (quadratic: thousands of "begin 644 x" lines never finished).
_UUENCODE_BEGIN = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+)\r?\n", re.M)
_UUENCODE_END = re.compile(r"^end[ \t]*+$", re.M)
# A "--token" line followed by a header line; the token is checked in Python
# (``_boundary_token``): a lazy token next to "[ \t]*" cost 70 steps per character.
_BOUNDARY_LINE = re.compile(r"^--([^\r\n\"]+)\r?\n(?=[A-Za-z0-9-]{1,76}:)", re.M)
_SKIPPED_TYPES = frozenset({"text/x-amp-html"})  # AMP for Email: a third rendering, never shown


@dataclass
class Extracted:
    """Mutable accumulator for one walk; ``parse.py`` freezes it into ParsedEmail."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    dropped_attachments: int = 0

    def keeps_attachment(self) -> bool:
        """Whether one more attachment is kept (MAX_ATTACHMENTS); a dropped one is
        only counted, never decoded."""
        if len(self.attachments) < MAX_ATTACHMENTS:
            return True
        self.dropped_attachments += 1
        return False


def extract(message: Message, *, hint: str | None) -> Extracted:
    """Collect body texts and attachments of ``message`` (iteratively, capped in
    depth, parts walked and attachments kept)."""
    out = Extracted()
    stack: list[tuple[Message, int, bool]] = [(message, 0, False)]
    walked = 0
    while stack:
        part, depth, inside_attachment = stack.pop()
        if depth > MAX_DEPTH:
            out.defects.append("mime-too-deep")
            continue
        walked += 1
        if walked > MAX_PARTS:
            out.defects.append(f"too-many-parts:{max(tree_shape(message)[0], walked)}>{MAX_PARTS}")
            break
        children = _children(part, out)
        if children is None:
            _leaf(part, out, hint=hint, inside_attachment=inside_attachment)
            continue
        if part.get_content_maintype() == "message" and _is_attachment(part):
            if out.keeps_attachment():
                out.attachments.append(_message_attachment(part, children, out))
            continue
        attached = inside_attachment or part.get_content_disposition() == "attachment"
        stack.extend((child, depth + 1, attached) for child in reversed(children))
    if out.dropped_attachments:
        total = len(out.attachments) + out.dropped_attachments
        out.defects.append(f"too-many-attachments:{total}>{MAX_ATTACHMENTS}")
    return out


def iter_parts(message: Message) -> list[Message]:
    """The first MAX_PARTS parts of ``message``, depth-first, without recursion
    (``Message.walk`` recurses and a hostile nesting depth would exhaust the stack)."""
    found: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack and len(found) < MAX_PARTS:
        part, depth = stack.pop()
        found.append(part)
        payload = part.get_payload()
        if isinstance(payload, list) and depth < MAX_DEPTH:
            stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
    return found


def tree_shape(message: Message) -> tuple[int, int]:
    """(parts, deepest nesting) of the parsed tree (cheap: nothing is decoded)."""
    count = deepest = 0
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((p, depth + 1) for p in payload if isinstance(p, Message))
    return count, deepest


def _children(part: Message, out: Extracted) -> list[Message] | None:
    """Sub-parts of a container, recovering those a broken boundary hid; None for a leaf."""
    payload = part.get_payload()
    if isinstance(payload, str) and part.get_content_maintype() == "multipart":
        payload = _recover_boundary(part, payload)
        if payload is not None:
            out.defects.append("recovered-boundary")
    if not isinstance(payload, list):
        return None
    children = [p for p in payload if isinstance(p, Message)]
    recovered = _recover_epilogue(part)
    if recovered:
        out.defects.append("recovered-parts-from-epilogue")
    return children + recovered


def _recover_boundary(part: Message, payload: str) -> list[Message] | None:
    """Sub-parts of a multipart whose declared boundary never occurs.

    Bulk mailers have been seen declaring one boundary and using another; the first
    ``--token`` line followed by a header line is taken as the boundary in use.
    """
    token = next((t for t in map(_boundary_token, _BOUNDARY_LINE.finditer(payload)) if t), None)
    if token is None:
        return None
    head = f'Content-Type: {part.get_content_type()}; boundary="{token}"\n\n'
    reparsed = message_from_bytes(head.encode("ascii", "replace") + payload.encode("utf-8", "surrogateescape"))
    children = reparsed.get_payload()
    if not isinstance(children, list):
        return None
    return [p for p in children if isinstance(p, Message)]


def _boundary_token(match: re.Match[str]) -> str | None:
    """The boundary a "--token" line names (1 to 70 characters, RFC 2046 §5.1.1),
    trailing blanks aside; None when the line names none."""
    line = match.group(1)
    token = line.rstrip(" \t") or line[:1]
    return token if len(token) <= 70 else None


def _recover_epilogue(part: Message) -> list[Message]:
    """Parts written after the closing boundary.

    Some mailers (seen from Zimbra webmail spam) reuse the outer boundary for a nested
    multipart, so the stdlib closes the outer part early and the real attachment ends
    up in the epilogue; mail-parser recovers these too.
    """
    boundary = part.get_boundary()
    epilogue = part.epilogue
    if not boundary or not epilogue or f"--{boundary}" not in epilogue:
        return []
    parts: list[Message] = []
    for chunk in re.split(rf"^--{re.escape(boundary)}(?:--)?[ \t]*+\r?$", epilogue, flags=re.M):
        chunk = chunk.lstrip("\r\n")
        if re.match(r"[A-Za-z0-9-]++:", chunk):
            parts.append(message_from_bytes(chunk.encode("utf-8", "surrogateescape")))
            if len(parts) > MAX_PARTS:
                break  # the walk stops there anyway
    return parts


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment" or bool(part.get_filename())


def _leaf(part: Message, out: Extracted, *, hint: str | None, inside_attachment: bool) -> None:
    ctype = part.get_content_type()
    if ctype in _SKIPPED_TYPES:
        return
    disposition = part.get_content_disposition()
    is_text_body = ctype in ("text/plain", "text/html") and not inside_attachment
    if ctype.startswith("multipart/"):
        # A multipart whose boundary never appears (StartBoundaryNotFoundDefect):
        # its payload is the raw body; show it as text rather than lose it.
        _body_text(part, out, hint=hint, html=_looks_like_html(part))
        return
    named = _is_attachment(part)
    if named or not is_text_body:
        if out.keeps_attachment():
            out.attachments.append(_attachment(part, out, hint=hint, index=len(out.attachments)))
    if is_text_body and (not named or disposition == "inline"):
        _body_text(part, out, hint=hint, html=ctype == "text/html")


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _looks_like_html(part: Message) -> bool:
    head = _payload_bytes(part)[:2048].lower()
    return b"<html" in head or b"<body" in head or b"<div" in head


def _body_text(part: Message, out: Extracted, *, hint: str | None, html: bool) -> None:
    data = _payload_bytes(part)
    declared = _declared_charset(part)
    if html and not declared:
        declared = sniff_html_charset(data)
    decoded = decode_bytes(data, declared, hint=hint)
    out.defects.extend(decoded.defects)
    text = decoded.text
    if not html:
        text = _extract_uuencoded(text, out)
    (out.html if html else out.plain).append(text)


def _declared_charset(part: Message) -> str | None:
    value = part.get_param("charset")
    if isinstance(value, tuple):  # RFC 2231 encoded parameter: (charset, lang, value)
        value = value[2]
    return value if isinstance(value, str) else None


def _extract_uuencoded(text: str, out: Extracted) -> str:
    """Lift ``begin 644 name`` ... ``end`` blocks out of a plain body (Outlook Express
    and old list software still send attachments this way, outside MIME)."""
    if "begin " not in text:
        return text
    kept: list[str] = []
    pos = 0
    while (begin := _UUENCODE_BEGIN.search(text, pos)) is not None:
        end = _UUENCODE_END.search(text, begin.end())
        if end is None:
            break  # no "end" line after this "begin": none after any later one either
        if out.keeps_attachment():
            out.attachments.append(_uudecoded(begin.group(1), text[begin.end() : end.start()], out))
        kept.append(text[pos : begin.start()])
        pos = end.end()
    return "".join(kept) + text[pos:]


def _uudecoded(name: str, body: str, out: Extracted) -> ParsedAttachment:
    data = bytearray()
    for line in body.splitlines():
        if not line.strip() or line.strip() == "`":
            continue
        try:
            data += binascii.a2b_uu(line)
        except (binascii.Error, ValueError):  # ValueError: a non-ASCII character in the line
            out.defects.append("bad-uuencode-line")
    filename = _safe_filename(name.strip()) or f"attachment-{len(out.attachments) + 1}"
    ctype = _MIME_TYPES.guess_type(filename)[0] or "application/octet-stream"
    return ParsedAttachment(filename, ctype, bytes(data), None, False)


def _attachment(part: Message, out: Extracted, *, hint: str | None, index: int) -> ParsedAttachment:
    ctype = part.get_content_type()
    content_id = _content_id(part)
    filename = _filename(part, out, hint=hint) or _fallback_name(ctype, index)
    inline = part.get_content_disposition() == "inline" or (
        part.get_content_disposition() is None and content_id is not None
    )
    return ParsedAttachment(filename, ctype, _payload_bytes(part), content_id, inline)


def _message_attachment(part: Message, children: list[Message], out: Extracted) -> ParsedAttachment:
    """An attached message (forward-as-attachment): kept whole, as a .eml file."""
    inner = children[0] if children else part
    try:
        content = inner.as_bytes()
    except (ValueError, TypeError, LookupError, UnicodeError):
        # The generator can trip on headers it cannot re-fold; keep a readable copy.
        out.defects.append("unflattenable-attached-message")
        content = str(inner).encode("utf-8", "replace")
    name = _filename(part, out, hint=None) or _fallback_name("message/rfc822", len(out.attachments))
    return ParsedAttachment(name, part.get_content_type(), content, _content_id(part), False)


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if value is None:
        return None
    cid = "".join(single_line(str(value)).split()).strip("<>")
    return cid or None


def _filename(part: Message, out: Extracted, *, hint: str | None) -> str:
    """The decoded file name of ``part`` ("" when it has none).

    Read from the raw header: compat32 replaces raw 8-bit bytes (a cp1251 name sent
    unencoded, common from Russian webmail) by U+FFFD before we could decode them.
    Outlook and old Thunderbird also put RFC 2047 words inside the quoted name
    (RFC 2047 §5 forbids it; every client decodes it anyway).
    """
    view = Message()
    for name, value in part.raw_items():
        if name.lower() in ("content-disposition", "content-type"):
            decoded = decode_header_value(str(value), hint=hint)
            out.defects.extend(decoded.defects)
            view[name] = decoded.value
    raw = view.get_filename()
    if not raw:
        return ""
    decoded = decode_header_value(str(raw), hint=hint)
    out.defects.extend(decoded.defects)
    return _safe_filename(decoded.value)


def _safe_filename(name: str) -> str:
    """Base name only: a sender-chosen ``../../x`` or ``C:\\x`` must not name a path."""
    name = single_line(name).replace("\\", "/")
    return posixpath.basename(name.rstrip("/")).strip().lstrip(".")[:255] or ""


def _fallback_name(ctype: str, index: int) -> str:
    ext = _MIME_TYPES.guess_extension(ctype) or ".bin"
    return f"attachment-{index + 1}{ext}"
