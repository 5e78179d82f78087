"""Build outgoing mail (architecture §7) from plain values. Pure: no database, no network.

No field can inject a header (RFC 5322 §2.2: a field is one logical line; an embedded CRLF
starts a new, attacker-chosen field). Three walls:
1. Free text from customers or admins (subject, display names, file names) is folded to one
   line, with RFC 2047 encoded words decoded first (see `clean_text`); structural values
   (addresses, our Message-ID) carrying CR/LF/NUL are refused (`UnsafeHeader`); hostile ids
   in a customer's References chain are dropped.
2. The stdlib policy refuses CR/LF in header values.
3. The finished message is re-parsed and must show exactly the fields we set, in every part.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.errors import HeaderParseError
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import cast

from core.errors import InvalidInput
from inbound.email.headers import decode_header_value, single_line

TAG_PREFIX = "TL"
# RFC 5537 §3.4.4 (trimming References in Netnews, the practice mail clients follow): keep the
# first id (the thread root) and the newest ones; we keep 20 in all.
MAX_REFERENCES = 20
# Longer ids than this are not worth the risk of an over-long header line (RFC 5322 §2.1.1).
_MAX_ID_LENGTH = 250
_MAX_FILENAME = 200

# A bare msg-id (brackets removed, as stored): printable ASCII, no white space, no brackets.
_BARE_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+$")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_WS = re.compile(r"\s+")
# What the stdlib would take for the start of an RFC 2047 encoded word (lenient on purpose).
_ENCODED_WORD_START = re.compile(r"=\?(?=[^?\s]*\?[bBqQ]\?)")
# Reply prefixes as written by common clients in several languages (Re, AW, SV, Antw, VS, RIF,
# Réf, "Re[2]:"), and RFC 3834's "Auto:"; stripped so that we add exactly one.
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|vs|rif|r[ée]f|auto)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")


class UnsafeHeader(InvalidInput):
    """A structural header value (address, Message-ID) that cannot be sent safely."""


@dataclass(frozen=True, kw_only=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class OutgoingEmail:
    """One mail to send. Message-IDs are bare (no angle brackets), as Threadline stores them."""

    from_address: str
    from_name: str | None
    to_address: str
    to_name: str | None
    subject: str
    text: str
    message_id: str
    html: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: str | None = None
    auto_submitted: bool = False
    # RFC 3834 §5: "auto-replied" answers a message; "auto-generated" (agent notifications) does not.
    auto_submitted_kind: str = "auto-replied"
    attachments: tuple[OutgoingAttachment, ...] = ()
    date: datetime | None = None


class _MsgIdListHeader(UnstructuredHeader):
    """In-Reply-To / References: folded between ids only, never RFC 2047-encoded.

    The stdlib treats these as unstructured text and turns an id longer than one line (common:
    Outlook's ids run past 76 characters) into encoded words, which no client matches again.
    """

    name: str  # provided by BaseHeader, which the registry mixes in

    def fold(self, *, policy: EmailPolicy) -> str:  # type: ignore[override]
        limit = policy.max_line_length or 0
        lines = [f"{self.name}:"]
        for mid in str(self).split():
            if limit and len(lines[-1]) + 1 + len(mid) > limit and lines[-1] != f"{self.name}:":
                lines.append("")
            lines[-1] += f" {mid}"
        return policy.linesep.join(lines) + policy.linesep


def _policy() -> EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    for name in ("in-reply-to", "references"):
        registry.map_to_type(name, cast("type[BaseHeader]", _MsgIdListHeader))
    # SMTP: CRLF line ends, lines folded at 78 (RFC 5322 §2.1.1).
    return email_policy.SMTP.clone(header_factory=registry)


POLICY = _policy()


# ---- small pure helpers (also used by the delivery jobs) ----


def ticket_tag(number: int) -> str:
    return f"[{TAG_PREFIX}-{number}]"


def clean_text(value: str | None) -> str:
    """Free text for a header: one line, no control characters, single spaces.

    RFC 2047 encoded words are decoded here first: the stdlib (3.11) decodes them itself when
    the header is set and then writes the decoded text raw, so '=?utf-8?q?x=0D=0ABcc:...?=' as a
    subject would become a real Bcc header. Decoding (and flattening) until none is left, and
    breaking up any that survive the rounds, closes that door.
    """
    text = single_line(value or "")
    for _ in range(4):  # an encoded word can hide another one
        if not _ENCODED_WORD_START.search(text):
            break
        text = decode_header_value(text).value
    return _WS.sub(" ", _ENCODED_WORD_START.sub("= ?", text)).strip()


def tagged_subject(subject: str, *, number: int, prefix: str = "Re") -> str:
    """'Backup fails' -> 'Re: [TL-7] Backup fails'; never two tags, never 'Re: Re:'."""
    tag = ticket_tag(number)
    text = clean_text(subject)
    text = re.sub(rf"\[\s*{TAG_PREFIX}-{number}\s*\]", " ", text, flags=re.I)
    # Prefixes may sit on either side of a removed tag ("Re: [TL-7] Re: x"): strip until stable.
    while True:
        stripped = _REPLY_PREFIX.sub("", text).strip()
        if stripped == text:
            break
        text = stripped
    text = _WS.sub(" ", text).strip() or "(no subject)"
    return f"{prefix}: {tag} {text}" if prefix else f"{tag} {text}"


def reply_address(inbox_address: str, token: str) -> str:
    """The ticket's plus address, 'support+TOKEN@acme.test' (see inbound/ingest/addresses.py)."""
    local, _, domain = inbox_address.rpartition("@")
    return f"{local}+{token}@{domain}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def new_message_id(domain: str) -> str:
    """A fresh bare Message-ID, '<uuid>@<domain>' (RFC 5322 §3.6.4: globally unique)."""
    return f"{uuid.uuid4()}@{domain}"


def bare_id(mid: str) -> str:
    """'<a@b>' -> 'a@b' (one pair of brackets; anything else is left for the checks to refuse)."""
    mid = mid.strip()
    return mid[1:-1] if mid.startswith("<") and mid.endswith(">") else mid


def is_safe_message_id(mid: str) -> bool:
    return 0 < len(mid) <= _MAX_ID_LENGTH and bool(_BARE_ID.match(mid))


def thread_references(
    *, chain: Iterable[str], parent: str | None, ours: Iterable[str], limit: int = MAX_REFERENCES
) -> tuple[str, ...]:
    """References for a reply: the customer's chain, their message, our earlier ids.

    De-duplicated keeping the first occurrence; unsafe ids (from hostile or broken mail) are
    dropped; trimmed to `limit` keeping the root and the newest (RFC 5537 §3.4.4).
    """
    ids: dict[str, None] = {}
    for mid in (*chain, *([parent] if parent else []), *ours):
        mid = bare_id(mid)
        if is_safe_message_id(mid):
            ids.setdefault(mid, None)
    out = tuple(ids)
    if len(out) > limit:
        out = (out[0], *out[len(out) - (limit - 1) :])
    return out


def text_to_html(text: str) -> str:
    """The HTML alternative of plain text: escaped, blank lines make paragraphs, others <br>."""
    normalised = _strip_nul(text).replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(normalised) if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>' + chr(10))}</p>\n" for p in paragraphs)
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{body}</body></html>\n'


# ---- the message ----


def build_message(mail: OutgoingEmail) -> EmailMessage:
    """The RFC 5322 message: text + HTML alternative, attachments as multipart/mixed."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(mail.from_address, mail.from_name, field_name="From")
    msg["To"] = _address(mail.to_address, mail.to_name, field_name="To")
    if mail.reply_to:
        msg["Reply-To"] = _address(mail.reply_to, mail.from_name, field_name="Reply-To")
    msg["Subject"] = clean_text(mail.subject) or "(no subject)"
    msg["Date"] = format_datetime(mail.date or datetime.now(UTC))
    msg["Message-ID"] = f"<{_own_message_id(mail.message_id)}>"
    parent = bare_id(mail.in_reply_to or "")
    if is_safe_message_id(parent):
        msg["In-Reply-To"] = f"<{parent}>"
    references = thread_references(chain=mail.references, parent=None, ours=())
    if references:
        msg["References"] = " ".join(f"<{mid}>" for mid in references)
    if mail.auto_submitted:
        # RFC 3834 §5: marks the mail as an automatic response, so other responders stay quiet;
        # Exchange/Outlook honour only their own header (X-Auto-Response-Suppress, [MS-OXCMAIL]).
        msg["Auto-Submitted"] = "auto-generated" if mail.auto_submitted_kind == "auto-generated" else "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    # Quoted-printable keeps the body 7-bit clean (no 8BITMIME needed) and lines short.
    msg.set_content(_strip_nul(mail.text), subtype="plain", charset="utf-8", cte="quoted-printable")
    alternative = _strip_nul(mail.html) if mail.html else text_to_html(mail.text)
    msg.add_alternative(alternative, subtype="html", charset="utf-8", cte="quoted-printable")
    for attachment in mail.attachments:
        maintype, subtype = _content_type(attachment.content_type)
        msg.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=_filename(attachment.filename)
        )
    for part in msg.iter_parts() if msg.is_multipart() else ():
        _drop_inner_mime_version(part)
    _verify_round_trip(msg)
    return msg


def _verify_round_trip(msg: EmailMessage) -> None:
    """Second wall: a reader must see exactly the header fields we set, in every part.

    Catches what the value checks above might miss (a stdlib quirk that turns a value into
    two fields, like the encoded-word decoding in `clean_text`'s docstring).
    """
    # compat32: only the field names are compared, and it skips building header objects.
    reparsed = BytesParser(policy=email_policy.compat32).parsebytes(msg.as_bytes())
    ours, theirs = list(msg.walk()), list(reparsed.walk())
    if len(ours) != len(theirs) or any(
        [k.lower() for k in a.keys()] != [k.lower() for k in b.keys()] for a, b in zip(ours, theirs, strict=True)
    ):
        raise UnsafeHeader("a header value would have changed the structure of the message")


def _address(addr_spec: str, name: str | None, *, field_name: str) -> Address:
    # Errors name the field, never the value: Reply-To carries the ticket's secret token.
    addr = addr_spec.strip()
    if not addr or _CONTROLS.search(addr) or " " in addr:
        raise UnsafeHeader(f"the {field_name} address is empty or contains white space or control characters")
    if not addr.isascii():
        raise UnsafeHeader(f"the {field_name} address is not ASCII (SMTPUTF8 mail is not supported)")
    display = clean_text(name)
    if display.lower() == addr.lower():
        display = ""  # 'support@x <support@x>' looks like spoofing to some filters
    try:
        address = Address(display_name=display, addr_spec=addr)
    except (ValueError, IndexError, HeaderParseError) as exc:  # the stdlib refuses what is not one addr-spec
        raise UnsafeHeader(f"the {field_name} address is not a single email address") from exc
    if not address.username or not address.domain:
        raise UnsafeHeader(f"the {field_name} address is not a single email address")
    return address


def _drop_inner_mime_version(part: MIMEPart) -> None:
    # The stdlib stamps MIME-Version on parts it creates; RFC 2045 §4 wants it once, on top.
    del part["MIME-Version"]
    for sub in part.iter_parts() if part.is_multipart() else ():
        _drop_inner_mime_version(sub)


def _own_message_id(mid: str) -> str:
    bare = bare_id(mid)
    if not is_safe_message_id(bare) or bare.count("@") != 1:
        raise UnsafeHeader("our Message-ID must be printable ASCII 'left@right' without brackets or spaces")
    return bare


def _content_type(value: str) -> tuple[str, str]:
    ctype = value.strip().lower().split(";", 1)[0].strip()
    if not _MIME_TYPE.match(ctype) or ctype.startswith(("multipart/", "message/")):
        # multipart/* would need our boundaries and message/* may not be base64 (RFC 2046
        # §5.2.1): both travel as opaque bytes.
        ctype = "application/octet-stream"
    maintype, _, subtype = ctype.partition("/")
    return maintype, subtype


def _filename(name: str) -> str:
    base = clean_text(name).replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    return base[:_MAX_FILENAME] or "attachment"


def _strip_nul(text: str) -> str:
    # RFC 5322 §2.3: NUL is not allowed in a message body.
    return text.replace("\x00", "")
