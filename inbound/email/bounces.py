"""Delivery failure reports: who failed, permanently or not, and for which message.

Two detectors, tried in order:
* ``dsn``: RFC 3464 ``multipart/report; report-type=delivery-status`` (RFC 6522),
  read field by field: per-recipient ``Final-Recipient``/``Original-Recipient``,
  ``Action`` and ``Status`` (RFC 3463: 5.x.x permanent, 4.x.x transient).
* ``text``: the human-readable notices that pre-DSN and non-conforming MTAs send
  (qmail, Postfix and Exim text parts, Exchange/GroupWise, Yahoo, AOL, smtp32...);
  see ``bounce_text.py``.

Only mail that looks like it came from a mail system is examined (``_looks_like_bounce``):
a customer who pastes "<bob@example.com>: User unknown" into a ticket is not a bounce.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message

from inbound.email.bounce_text import looks_temporary, scan_notice
from inbound.email.charsets import decode_bytes
from inbound.email.headers import parse_msg_ids
from inbound.email.model import EmailAddress, ParsedEmail
from inbound.email.parts import iter_parts

_DAEMON_LOCAL = re.compile(r"^(mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|mdaemon|mail[-_.]delivery[-_.]system)$", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returning message|delivery status notification|delivery fail|"
    r"failure notice|failure delivery|mail delivery|delivery problem|could not be delivered|"
    r"not delivered|non-?delivery|delayed|nondeliverable|mail system error|processing error|"
    r"user unknown|nameserver error|error during delivery|delivery notification",
    re.I,
)
_FAILED_ACTIONS = frozenset({"failed", "delayed"})


@dataclass(frozen=True, slots=True)
class BounceReport:
    failed_recipients: tuple[str, ...]
    permanent: bool | None  # None: the report does not say
    original_message_id: str | None  # bracket-less, like ParsedEmail.message_id
    detector: str


def detect_bounce(parsed: ParsedEmail, raw: bytes) -> BounceReport | None:
    """A report when ``parsed`` is a delivery failure or delay notice, else None."""
    if not _looks_like_bounce(parsed):
        return None
    message = email.message_from_bytes(raw)
    parts = iter_parts(message)
    original_id = _original_message_id(parts)
    dsn = _from_dsn(parts)
    if dsn is not None and dsn[0]:
        recipients, permanent = dsn
        return BounceReport(recipients, permanent, original_id, "dsn")
    notice = _notice_text(parsed, parts)
    found = scan_notice(notice, ignore=_parties(parsed))
    if found is not None:
        recipients, detector = found
        permanent = dsn[1] if dsn is not None else not looks_temporary(parsed.subject, notice)
        return BounceReport(recipients, permanent, original_id or _id_in_text(parsed.text), f"text:{detector}")
    if dsn is not None or parsed.is_multipart_report:
        # A report we could not read recipients from is still a bounce.
        return BounceReport((), dsn[1] if dsn else None, original_id, "dsn")
    return None


def _looks_like_bounce(parsed: ParsedEmail) -> bool:
    if parsed.is_multipart_report:
        return parsed.report_type != "disposition-notification"
    for addr in (parsed.from_.addr if parsed.from_ else "", parsed.return_path or ""):
        if _DAEMON_LOCAL.match(addr.partition("@")[0]):
            return True
    return parsed.return_path == "" or bool(_BOUNCE_SUBJECT.search(parsed.subject))


def _parties(parsed: ParsedEmail) -> frozenset[str]:
    """Addresses of the bounce itself: never the failed recipient."""
    found = {a.addr.lower() for a in (*parsed.to, *parsed.cc, *parsed.reply_to)}
    if parsed.from_:
        found.add(parsed.from_.addr.lower())
    if parsed.return_path:
        found.add(parsed.return_path.lower())
    return frozenset(found)


# --- RFC 3464 -----------------------------------------------------------------------


def _from_dsn(parts: list[Message]) -> tuple[tuple[str, ...], bool | None] | None:
    """(failed recipients, permanent) from the first delivery-status part, or None."""
    for part in parts:
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        recipients: list[str] = []
        classes: set[str] = set()
        for fields in _status_groups(part):
            action = fields.get("action", "").split()[0].lower() if fields.get("action") else ""
            status = fields.get("status", "").strip()
            status_class = status[:1] if re.match(r"[245]\.\d", status) else ""
            if action and action not in _FAILED_ACTIONS:
                continue
            if not action and status_class not in ("4", "5"):
                continue
            address = _recipient_address(fields.get("final-recipient") or fields.get("original-recipient"))
            if address:
                recipients.append(address)
                classes.add("4" if action == "delayed" else status_class or "5")
        permanent = None if not classes else "5" in classes
        return tuple(dict.fromkeys(recipients)), permanent
    return None


def _status_groups(part: Message) -> list[dict[str, str]]:
    """Field groups of a delivery-status body (RFC 3464 §2.1: one per-message group,
    then one per recipient, separated by blank lines)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib parses each group as a header block
        return [{k.lower(): str(v) for k, v in group.items()} for group in payload if isinstance(group, Message)]
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        decoded = part.get_payload(decode=True)
        text = decoded.decode("utf-8", "replace") if isinstance(decoded, bytes) else text
    groups = []
    for block in re.split(r"\r?\n[ \t]*\r?\n", text):
        fields = dict(
            (m.group(1).lower(), m.group(2).strip()) for m in re.finditer(r"^([A-Za-z-]+):[ \t]*(.*)$", block, re.M)
        )
        if fields:
            groups.append(fields)
    return groups


def _recipient_address(value: str | None) -> str | None:
    """The address of an ``address-type; address`` field (RFC 3464 §2.3.2)."""
    if not value:
        return None
    _, _, address = value.rpartition(";")
    address = address.strip().strip("<>").strip()
    if "@" not in address:
        return None
    return EmailAddress.normalised("", address).addr


def _original_message_id(parts: list[Message]) -> str | None:
    """Message-ID of the returned message (message/rfc822 or text/rfc822-headers)."""
    for part in parts:
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = parse_msg_ids(str(inner[0].get("Message-ID", "")))
                if found:
                    return found[0]
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found = parse_msg_ids(str(email.message_from_bytes(data).get("Message-ID", "")))
                if found:
                    return found[0]
    return None


def _id_in_text(text: str) -> str | None:
    """Message-ID of an original message quoted inline after the notice."""
    match = re.search(r"^>?\s*Message-ID:\s*(<[^>\r\n]+>)", text, re.I | re.M)
    return parse_msg_ids(match.group(1))[0] if match and parse_msg_ids(match.group(1)) else None


def _notice_text(parsed: ParsedEmail, parts: list[Message]) -> str:
    """The human-readable notice: the first text part of the report (not the
    returned message's body) when there is one, else the whole text."""
    for part in parts:
        if part.get_content_type() == "text/plain" and part.get_content_disposition() != "attachment":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data.strip():
                charset = part.get_param("charset")
                return decode_bytes(data, charset if isinstance(charset, str) else None).text
    return parsed.text
