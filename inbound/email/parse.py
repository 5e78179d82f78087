"""``parse_email``: raw RFC 5322 bytes -> ``ParsedEmail``. Pure, and never crashes.

Division of labour:
* mail-parser (``parse_from_bytes``) builds the compat32 MIME tree under a recursion
  guard and does what it hardened best: address headers (display names decoded in
  lexical context, ambiguities reported), the Date header, and defect diagnostics
  for addresses, dates, Received and MIME headers.
* The stdlib tree is walked by ``parts.py`` for bodies and attachments, with our own
  charset decoding (``charsets.py``), and headers are decoded by ``headers.py``.

Every problem is recorded in ``ParsedEmail.defects``; only input that is no message
at all raises ``UnparseableEmail`` (the caller stores it raw and flags it).
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import mailparser  # type: ignore[import-untyped,unused-ignore]
from mailparser.exceptions import MailParserRecursionError  # type: ignore[import-untyped,unused-ignore]

from inbound.email.charsets import normalise_label
from inbound.email.errors import UnparseableEmail
from inbound.email.headers import angle_addr, collapse_ws, decode_header_value, parse_msg_ids
from inbound.email.model import EmailAddress, ParsedEmail
from inbound.email.parts import Extracted, extract, iter_parts
from inbound.email.quotes import strip_reply
from inbound.email.sanitize import MAX_HTML_DEPTH, html_depth, html_to_text, sanitize_html

logger = logging.getLogger(__name__)

# mail-parser's own body decoding is not used (parts.py decodes), so its charset
# diagnostic would describe text we never show.
_IGNORED_MAILPARSER_DEFECTS = frozenset({"CharsetDecodeDefect"})
_UTF8_BOM = b"\xef\xbb\xbf"
_OBS_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]+:", re.M)


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one message. Raises ``UnparseableEmail`` only when ``raw`` has no header."""
    defects: list[str] = []
    body = _strip_leading_garbage(raw, defects)
    if not body.strip():
        raise UnparseableEmail("empty message")
    parser = _mailparser(body, defects)
    message: Message = parser.message if parser is not None else _stdlib_message(body)
    if not message.keys():
        raise UnparseableEmail("no RFC 5322 header field found")

    if parser is not None:
        defects.extend(sorted(set(parser.defects_categories) - _IGNORED_MAILPARSER_DEFECTS))
    hint = _body_charset(message)
    headers = _decode_headers(message, hint, defects)
    extracted = extract(message, hint=hint)
    text, html = _bodies(extracted)
    defects.extend(extracted.defects)
    defects.extend(_stdlib_defects(message))

    from_ = _addresses(parser, message, "from")
    sender = from_[0] if from_ else None
    first = _first_values(headers)
    return ParsedEmail(
        message_id=next(iter(parse_msg_ids(first.get("message-id"))), None),
        in_reply_to=parse_msg_ids(first.get("in-reply-to")),
        references=parse_msg_ids(first.get("references")),
        subject=collapse_ws(first.get("subject", "")),
        from_=sender,
        to=_addresses(parser, message, "to"),
        cc=_addresses(parser, message, "cc"),
        reply_to=_addresses(parser, message, "reply-to"),
        return_path=angle_addr(first.get("return-path")),
        date=_date(parser, message),
        headers=headers,
        text=text,
        html=html,
        reply_text=strip_reply(text, sender=f"{sender.name} {sender.addr}" if sender else None),
        attachments=tuple(extracted.attachments),
        defects=tuple(dict.fromkeys(defects)),
        is_multipart_report=message.get_content_type() == "multipart/report",
        report_type=_report_type(message),
        content_digest=hashlib.sha256(raw).hexdigest(),
    )


def _strip_leading_garbage(raw: bytes, defects: list[str]) -> bytes:
    """Drop a UTF-8 BOM and blank lines before the first header: files saved by
    Windows tools and some IMAP exports start that way, and the stdlib would then
    read every header as body."""
    body = raw.removeprefix(_UTF8_BOM).lstrip(b"\r\n")
    if body != raw:
        defects.append("leading-garbage-stripped")
    return _obsolete_field_names(body, defects)


def _obsolete_field_names(raw: bytes, defects: list[str]) -> bytes:
    """Rewrite ``Name  :`` to ``Name:`` in the header block.

    RFC 5322 §4.5 (obs-optional, obs-from, ...) allows white space before the colon
    and receivers must accept it; the stdlib parser does not, and would treat the
    whole header block as body.
    """
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    head, rest = raw[:end], raw[end:]
    fixed = _OBS_FIELD_NAME.sub(rb"\1:", head)
    if fixed != head:
        defects.append("obsolete-header-syntax")
    return fixed + rest


def _mailparser(raw: bytes, defects: list[str]) -> Any:
    try:
        return mailparser.parse_from_bytes(raw)
    except MailParserRecursionError as exc:
        raise UnparseableEmail("MIME nesting too deep") from exc
    except Exception as exc:  # noqa: BLE001 - third-party code on hostile input
        # A mail-parser bug must not lose the message: fall back to the stdlib
        # alone, and say so in the defects so the degraded parse is visible.
        logger.warning("mail-parser failed, using stdlib only", extra={"error": type(exc).__name__})
        defects.append(f"mailparser-failed:{type(exc).__name__}")
        return None


def _stdlib_message(raw: bytes) -> Message:
    try:
        return email.message_from_bytes(raw)
    except RecursionError as exc:
        raise UnparseableEmail("MIME nesting too deep") from exc


def _body_charset(message: Message) -> str | None:
    """The first charset a text part declares: raw 8-bit headers are usually in it."""
    for part in iter_parts(message):
        if part.get_content_maintype() in ("text", "multipart"):
            value = part.get_param("charset")
            if isinstance(value, str) and normalise_label(value) not in ("", "us-ascii"):
                return normalise_label(value)
    return None


def _decode_headers(message: Message, hint: str | None, defects: list[str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, value in message.raw_items():
        decoded = decode_header_value(str(value), hint=hint)
        defects.extend(decoded.defects)
        out.append((collapse_ws(str(name)).lower(), decoded.value.strip()))
    return tuple(out)


def _first_values(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name, value)
    return first


def _addresses(parser: Any, message: Message, header: str) -> tuple[EmailAddress, ...]:
    if parser is not None:
        # mail-parser names the attribute after the header, "from_" for "from".
        pairs = getattr(parser, {"from": "from_", "reply-to": "reply_to"}.get(header, header))
    else:
        pairs = getaddresses([str(v) for v in message.get_all(header, [])])
    found = []
    for name, addr in pairs:
        address = EmailAddress.normalised(decode_header_value(str(name)).value, str(addr))
        if address.addr:
            found.append(address)
    return tuple(dict.fromkeys(found))


def _date(parser: Any, message: Message) -> datetime | None:
    value = parser.date if parser is not None else _stdlib_date(message)
    if not isinstance(value, datetime):
        return None
    # A Date without a zone ("-0000" or none) is read as UTC (RFC 5322 §3.3).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stdlib_date(message: Message) -> datetime | None:
    raw = message.get("Date")
    if raw is None:
        return None
    try:
        return parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _stdlib_defects(message: Message) -> list[str]:
    """Defect class names the stdlib recorded, including while decoding payloads."""
    return [type(defect).__name__ for part in iter_parts(message) for defect in part.defects]


def _bodies(extracted: Extracted) -> tuple[str, str | None]:
    plain = [_lf(p).strip("\n") for p in extracted.plain if p.strip()]
    html_parts = [p for p in extracted.html if p.strip()]
    joined = "\n".join(html_parts)
    if html_parts and html_depth(joined) > MAX_HTML_DEPTH:
        extracted.defects.append("html-too-deep")
    html = sanitize_html(joined) if html_parts else None
    if plain:
        text = "\n\n".join(plain)
    elif html_parts:
        text = html_to_text("\n".join(html_parts))
    else:
        text = ""
    return text, html or None


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _report_type(message: Message) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    value = message.get_param("report-type")
    return normalise_label(value) if isinstance(value, str) else None
