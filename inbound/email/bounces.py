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

from inbound.email.bounce_text import is_failure_notice, looks_temporary, normalise_address, scan_notice
from inbound.email.charsets import decode_bytes
from inbound.email.headers import parse_msg_ids
from inbound.email.model import ParsedEmail
from inbound.email.parse import mime_tree
from inbound.email.parts import MAX_PARTS, iter_parts
from inbound.email.sanitize import html_to_text

_DAEMON_LOCAL = re.compile(
    r"^(mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|mdaemon|mail[-_.]delivery[-_.]system)$", re.I
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returning message|delivery status notification|delivery fail|"
    r"failure notice|failure delivery|mail delivery|delivery problem|could not be delivered|"
    r"not delivered|non-?delivery|delayed|nondeliverable|mail system error|processing error|"
    r"user unknown|nameserver error|error during delivery|delivery notification",
    re.I,
)


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
    # The tree parse_email read (same caps); None when it read the headers only.
    message = mime_tree(raw)
    parts = iter_parts(message) if message is not None else []
    original_id = _original_message_id(parts)
    dsn = _from_dsn(parts)
    if dsn is not None and dsn[0]:
        recipients, permanent = dsn
        return BounceReport(recipients, permanent, original_id, "dsn")
    notice = (_notice_text(message) if message is not None else "") or parsed.text
    found = scan_notice(notice, ignore=_parties(parsed), reporting_domain=_reporting_domain(parsed))
    if found is not None:
        recipients, detector = found
        stated = dsn[1] if dsn is not None else None
        permanent = stated if stated is not None else not looks_temporary(parsed.subject, notice)
        return BounceReport(recipients, permanent, original_id or _id_in_text(parsed.text), f"text:{detector}")
    if dsn is not None or (parsed.is_multipart_report and parsed.report_type != "disposition-notification"):
        # A report we could not read recipients from is still a bounce.
        return BounceReport((), dsn[1] if dsn else None, original_id, "dsn")
    if is_failure_notice(notice):
        return BounceReport((), not looks_temporary(parsed.subject, notice), original_id, "text:no-recipient")
    return None


def is_mail_system_address(addr: str) -> bool:
    """MAILER-DAEMON, postmaster (RFC 2142), MDaemon...: addresses only MTAs send from."""
    return bool(_DAEMON_LOCAL.match(addr.rpartition("@")[0] if "@" in addr else addr))


def has_bounce_subject(parsed: ParsedEmail) -> bool:
    """A subject in the wording MTAs use for failure and delay notices."""
    return bool(_BOUNCE_SUBJECT.search(parsed.subject))


def _looks_like_bounce(parsed: ParsedEmail) -> bool:
    if parsed.is_multipart_report and parsed.report_type != "disposition-notification":
        return True
    # A read receipt (RFC 8098) is not a bounce unless a mail system sent it; some
    # MTAs wrap rejections in one.
    senders = (parsed.from_.addr if parsed.from_ else "", parsed.return_path or "")
    if any(is_mail_system_address(addr) for addr in senders):
        return True
    return parsed.return_path == "" or has_bounce_subject(parsed)


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
    """(failed recipients, permanent) from the delivery-status parts, or None when
    there is none. All of them are read: some MTAs label their prose notice
    message/delivery-status too and put the real fields in a second part."""
    status_parts = [
        part
        for part in parts
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
    ]
    if not status_parts:
        return None
    recipients: list[str] = []
    classes: set[str] = set()
    for part in status_parts:
        for fields in _status_groups(part):
            state = _recipient_state(fields)
            # RFC 3464 §2.3.1 prefers the sender's own spelling (Original-Recipient)
            # over the address after the reporting MTA's aliasing (Final-Recipient).
            address = _recipient_address(fields.get("original-recipient")) or _recipient_address(
                fields.get("final-recipient")
            )
            if state and address:
                recipients.append(address)
                classes.add(state)
    permanent = None if not classes else "5" in classes
    return tuple(dict.fromkeys(recipients)), permanent


def _recipient_state(fields: dict[str, str]) -> str | None:
    """ "5" failed, "4" delayed, None for delivered/relayed/expanded or unknown.

    Some MTAs write non-standard actions ("failure", "error") or an SMTP reply in
    Status ("553 Exceeded maximum inbound message size"); both are read.
    """
    action = (fields.get("action") or "").strip().lower()
    status = re.match(r"\s*([245])[.\d]", fields.get("status") or "")
    status_class = status.group(1) if status else None
    if action.startswith(("fail", "error", "undeliver", "bounce")):
        # RFC 3464 §2.3.3: "failed" is final (no more attempts), even when the
        # last error was transient (a 4.4.7 queue timeout).
        return "5"
    if action.startswith("delay"):
        return "4"
    if not action and status_class in ("4", "5"):
        return status_class
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
    return normalise_address("".join(address.split()))


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
    # Blanks before the field stay on its line: "^>?\s*" ran across every following
    # blank line from each line start (quadratic on a text of empty lines).
    match = re.search(r"^>?[^\S\r\n]*+Message-ID:\s*+(<[^>\r\n]+>)", text, re.I | re.M)
    return parse_msg_ids(match.group(1))[0] if match and parse_msg_ids(match.group(1)) else None


def _notice_text(message: Message) -> str:
    """The human-readable notice: the report's own text parts, not those of the
    returned message (a message/rfc822 part is not descended into)."""
    stack = [message]
    texts: list[str] = []
    walked = 0
    while stack and walked < MAX_PARTS:
        part = stack.pop()
        walked += 1
        payload = part.get_payload()
        if part.get_content_maintype() == "multipart" and isinstance(payload, list):
            stack.extend(p for p in reversed(payload) if isinstance(p, Message))
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or part.get_content_disposition() == "attachment":
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data.strip():
            continue
        charset = part.get_param("charset")
        text = decode_bytes(data, charset if isinstance(charset, str) else None).text
        texts.append(html_to_text(text) if ctype == "text/html" else text)
        if ctype == "text/plain":
            break  # the first plain part is the notice; later ones are attachments' kin
    return "\n\n".join(texts)


def _reporting_domain(parsed: ParsedEmail) -> str | None:
    """The bouncing system's mail domain (last two labels of the From domain)."""
    if not parsed.from_ or "@" not in parsed.from_.addr:
        return None
    labels = parsed.from_.addr.rpartition("@")[2].split(".")
    return ".".join(labels[-2:]) if len(labels) >= 2 else None
