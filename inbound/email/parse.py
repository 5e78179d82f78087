"""``parse_email``: raw RFC 5322 bytes -> ``ParsedEmail``. Pure, and never crashes.

Division of labour:
* The stdlib builds the compat32 MIME tree (``mime_tree``, guarded against deep
  nesting); mail-parser reads that tree and does what it hardened best: address
  headers (display names decoded in lexical context, ambiguities reported), the Date
  header, and defect diagnostics for addresses, dates, Received and MIME headers.
* The tree is walked by ``parts.py`` for bodies and attachments, with our own
  charset decoding (``charsets.py``), and headers are decoded by ``headers.py``.

Structure is capped so hostile mail costs bounded, linear time: the first
``MAX_HEADERS`` header fields are kept; a message with more than ``MAX_PARTS`` parts,
nesting past ``MAX_DEPTH`` or more lines than ``MAX_LINES`` allows (all estimated on the
bytes, before any parser runs) is read for its headers only, its body replaced by
``TOO_COMPLEX_TEXT``; parts past the cap are not walked, attachments past
``MAX_ATTACHMENTS`` dropped, text and HTML cut at ``MAX_TEXT_CHARS``/``MAX_HTML_CHARS``.
Each cap met is a defect naming it ("too-many-parts:50000>1000").

Every problem is recorded in ``ParsedEmail.defects``; only input that is no message
at all raises ``UnparseableEmail`` (the caller stores it raw and flags it).
"""

from __future__ import annotations

import email
import hashlib
import itertools
import logging
import re
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import mailparser  # type: ignore[import-untyped,unused-ignore]

from inbound.email.charsets import normalise_label
from inbound.email.errors import UnparseableEmail
from inbound.email.headers import angle_addr, collapse_ws, decode_header_value, parse_msg_ids
from inbound.email.model import EmailAddress, ParsedAttachment, ParsedEmail
from inbound.email.parts import MAX_DEPTH, MAX_PARTS, Extracted, extract, iter_parts, tree_shape
from inbound.email.quotes import strip_reply
from inbound.email.sanitize import MAX_HTML_CHARS, MAX_HTML_DEPTH, clip_html, html_depth, html_to_text, sanitize_html

logger = logging.getLogger(__name__)

# Real mail has a few dozen header fields (40 at most in our corpora); mail-parser
# took 25 s over a message with 1,000,000 of them. Fields past this are dropped.
MAX_HEADERS = 1000
# Folded lines of those fields (a References or To header folds once per entry).
MAX_HEADER_LINES = 20 * MAX_HEADERS
# A ticket body, not an archive: the raw message is stored whole elsewhere.
MAX_TEXT_CHARS = 1_000_000
# The stdlib feed parser costs ~1 µs per line plus ~0.3 µs per line for each enclosing
# multipart (it tests every line against every open boundary: 2,000,000 lines nested
# 64 deep took 36 s). A 25 MB base64 attachment is 330,000 lines; the lines allowed
# shrink with nesting as MAX_LINES * 3 / (3 + nesting).
MAX_LINES = 1_000_000
# Recorded when the body was not parsed at all (headers only): the MIME tree of such
# a message must not be built elsewhere either (``bounces.py``).
MIME_NOT_PARSED = "mime-not-parsed"
TOO_COMPLEX_TEXT = (
    "This message is too complex to display (too many MIME parts or lines, or nested too deeply). "
    "The original message is kept."
)

# mail-parser's own body decoding is not used (parts.py decodes), so its charset
# diagnostic would describe text we never show.
_IGNORED_MAILPARSER_DEFECTS = frozenset({"CharsetDecodeDefect"})
_UTF8_BOM = b"\xef\xbb\xbf"
_OBS_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]+:", re.M)
_FIELD_START = re.compile(rb"^[^ \t\r\n]", re.M)
_LINE_START = re.compile(rb"^", re.M)
_BOUNDARY_PARAM = re.compile(rb'boundary\s*+=\s*+(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I)
_DASH_LINE = re.compile(rb"^--([^\r\n]{1,200})", re.M)


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one message. Raises ``UnparseableEmail`` only when ``raw`` has no header."""
    defects: list[str] = []
    body = _prepare(raw, defects)
    message = _tree(body, defects)
    if message is None:
        # The header block alone: a parser would still read the body line by line.
        headers_only = BytesHeaderParser().parsebytes(body[: _header_end(body)])
        _require_header(headers_only)
        headers = _decode_headers(headers_only, None, defects)
        return _assemble(
            raw, headers_only, None, headers, text=TOO_COMPLEX_TEXT, html=None, attachments=(), defects=defects
        )
    _require_header(message)
    parser = _mailparser(message, defects) if _fits_mailparser(message, defects) else None
    if parser is not None:
        defects.extend(sorted(set(parser.defects_categories) - _IGNORED_MAILPARSER_DEFECTS))
    hint = _body_charset(message)
    headers = _decode_headers(message, hint, defects)
    extracted = extract(message, hint=hint)
    text, html = _bodies(extracted)
    defects.extend(extracted.defects)
    defects.extend(_stdlib_defects(message))
    return _assemble(
        raw, message, parser, headers, text=text, html=html, attachments=tuple(extracted.attachments), defects=defects
    )


def mime_tree(raw: bytes) -> Message | None:
    """The stdlib MIME tree of ``raw``, prepared and capped as ``parse_email`` does;
    None when ``parse_email`` reads only its headers (or it is no message)."""
    defects: list[str] = []
    try:
        return _tree(_prepare(raw, defects), defects)
    except UnparseableEmail:
        return None


def _prepare(raw: bytes, defects: list[str]) -> bytes:
    body = _strip_leading_garbage(raw, defects)
    if not body.strip():
        raise UnparseableEmail("empty message")
    return _obsolete_field_names(_cap_header_block(body, defects), defects)


def _require_header(message: Message) -> None:
    if not message.keys():
        raise UnparseableEmail("no RFC 5322 header field found")


def _assemble(
    raw: bytes,
    message: Message,
    parser: Any,
    headers: tuple[tuple[str, str], ...],
    *,
    text: str,
    html: str | None,
    attachments: tuple[ParsedAttachment, ...],
    defects: list[str],
) -> ParsedEmail:
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
        attachments=attachments,
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
    return body


def _header_end(raw: bytes) -> int:
    return min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))


def _obsolete_field_names(raw: bytes, defects: list[str]) -> bytes:
    """Rewrite ``Name  :`` to ``Name:`` in the header block.

    RFC 5322 §4.5 (obs-optional, obs-from, ...) allows white space before the colon
    and receivers must accept it; the stdlib parser does not, and would treat the
    whole header block as body.
    """
    end = _header_end(raw)
    head, rest = raw[:end], raw[end:]
    fixed = _OBS_FIELD_NAME.sub(rb"\1:", head)
    if fixed != head:
        defects.append("obsolete-header-syntax")
    return fixed + rest


def _cap_header_block(raw: bytes, defects: list[str]) -> bytes:
    """``raw`` with only the first ``MAX_HEADERS`` fields (``MAX_HEADER_LINES`` lines)
    of its header block."""
    end = _header_end(raw)
    head = raw[:end]
    lines = 1 + head.count(b"\n")
    fields = lines - head.count(b"\n ") - head.count(b"\n\t")  # continuation lines aside
    cuts = []
    if fields > MAX_HEADERS:
        cuts.append(_nth_start(_FIELD_START, head, MAX_HEADERS))
        defects.append(f"too-many-headers:{fields}>{MAX_HEADERS}")
    if lines > MAX_HEADER_LINES:
        cuts.append(_nth_start(_LINE_START, head, MAX_HEADER_LINES))
        defects.append(f"too-many-header-lines:{lines}>{MAX_HEADER_LINES}")
    cut = min((c for c in cuts if c > 0), default=None)
    return raw if cut is None else head[:cut].rstrip(b"\r\n") + raw[end:]


def _nth_start(pattern: re.Pattern[bytes], data: bytes, n: int) -> int:
    """Where the match after the first ``n`` starts (0 when there is none)."""
    match = next(itertools.islice(pattern.finditer(data), n, None), None)
    return match.start() if match else 0


def _tree(body: bytes, defects: list[str]) -> Message | None:
    """The stdlib MIME tree, or None (defects say why) when only headers can be read."""
    cap = _structure_cap(body)
    if cap is not None:
        defects.extend((cap, MIME_NOT_PARSED))
        return None
    try:
        return email.message_from_bytes(body)
    except RecursionError:
        # The feed parser recurses once per nesting level: message/rfc822 nesting,
        # which has no boundaries to estimate it by, ends here.
        defects.extend(("mime-too-deep:parser", MIME_NOT_PARSED))
        return None


def _structure_cap(body: bytes) -> str | None:
    """The cap (as a defect) that ``body`` exceeds before parsing, if any; checked on
    the bytes because the parsers' own cost is what is being bounded."""
    lines = body.count(b"\n")
    if lines > MAX_LINES:
        return f"too-many-lines:{lines}>{MAX_LINES}"
    parts, nesting = _delimiters(body)
    if parts > MAX_PARTS:
        return f"too-many-parts:{parts}>{MAX_PARTS}"
    if nesting > MAX_DEPTH:
        return f"mime-too-deep:{nesting}>{MAX_DEPTH}"
    allowed = MAX_LINES * 3 // (3 + nesting)
    return f"too-many-lines:{lines}>{allowed}" if lines > allowed else None


def _delimiters(raw: bytes) -> tuple[int, int]:
    """(parts, multipart nesting) from the delimiter lines (RFC 2046 §5.1.1
    "--boundary") of the boundaries ``raw`` declares, followed as the feed parser does:
    a delimiter of an enclosing multipart ends the parts open inside it."""
    if b"\n--" not in raw:
        return 0, 0
    boundaries = {(m.group(1) or m.group(2)).rstrip() for m in _BOUNDARY_PARAM.finditer(raw)}
    parts = deepest = 0
    open_: list[bytes] = []  # boundaries of the multiparts enclosing the current line
    depth_of: dict[bytes, int] = {}  # index in open_, so that each line costs O(1)
    for match in _DASH_LINE.finditer(raw):
        token = match.group(1).rstrip(b" \t")
        closing = token.endswith(b"--") and token not in boundaries
        if closing:
            token = token[:-2]
        if token not in boundaries:
            continue
        if token in depth_of:
            for inner in open_[depth_of[token] + (0 if closing else 1) :]:
                del depth_of[inner]
            del open_[len(depth_of) :]
        elif not closing:
            depth_of[token] = len(open_)
            open_.append(token)
            deepest = max(deepest, len(open_))
        parts += not closing
    return parts, deepest


def _fits_mailparser(message: Message, defects: list[str]) -> bool:
    """Whether mail-parser may read the tree: it does its own work per part and per
    header field, and walks recursively (900 levels took 1.5 s), so a tree past the
    caps is read by our capped walk alone."""
    parts, depth = tree_shape(message)
    if parts > MAX_PARTS or depth > MAX_DEPTH:
        return False  # extract() records the cap
    for part in iter_parts(message):
        if len(part) > MAX_HEADERS:  # a nested part's header block (the top one is capped)
            defects.append(f"too-many-headers:{len(part)}>{MAX_HEADERS}")
            return False
    return True


def _mailparser(message: Message, defects: list[str]) -> Any:
    try:
        return mailparser.MailParser(message)
    except Exception as exc:  # noqa: BLE001 - third-party code on hostile input
        # A mail-parser bug must not lose the message: fall back to the stdlib
        # alone, and say so in the defects so the degraded parse is visible.
        logger.warning("mail-parser failed, using stdlib only", extra={"error": type(exc).__name__})
        defects.append(f"mailparser-failed:{type(exc).__name__}")
        return None


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
    if len(joined) > MAX_HTML_CHARS:  # sanitize_html and html_to_text read only that much
        extracted.defects.append(f"html-too-long:{len(joined)}>{MAX_HTML_CHARS}")
    if html_parts and html_depth(clip_html(joined)) > MAX_HTML_DEPTH:
        extracted.defects.append("html-too-deep")
    html = sanitize_html(joined) if html_parts else None
    if plain:
        text = "\n\n".join(plain)
    elif html_parts:
        text = html_to_text(joined)
    else:
        text = ""
    if len(text) > MAX_TEXT_CHARS:
        extracted.defects.append(f"text-too-long:{len(text)}>{MAX_TEXT_CHARS}")
        text = text[:MAX_TEXT_CHARS]
    return text, html or None


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _report_type(message: Message) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    value = message.get_param("report-type")
    return normalise_label(value) if isinstance(value, str) else None
