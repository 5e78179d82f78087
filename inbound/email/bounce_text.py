"""Failed recipients in the human-readable notice of a non-DSN bounce.

Pre-RFC 3464 MTAs (qmail, old Exim and Postfix text parts, Exchange 5.5, GroupWise,
Yahoo, AOL, smtp32, LSMTP, MDaemon...) say who failed in prose. Three shapes cover
them, tried together; an address any of them finds is reported:

* recipient lines: ``<a@b>: reason`` (qmail, Postfix, Yahoo), ``  a@b:`` alone
  (Exim), ``a@b on <date>`` (Exchange/GroupWise, also X.400 ``dda:SMTP=a@b``);
* phrases: "addressed to 'a@b'", "Your message to a@b was rejected",
  "not delivered to: a@b", "Delivery failed 20 attempts: a@b", "a@b... User unknown";
* an intro ("did not reach the following recipient(s):", "following addresses
  failed") followed by a list, one recipient per line.

Only the notice is read: it is cut where the returned message starts, so the
original's own To/From/Message-ID never count. When no shape matches, every
address in the notice except the bounce's own parties is taken (``generic``).
"""

from __future__ import annotations

import re

# Bounded by RFC 5321 §4.5.3.1 (local part ≤ 64, label ≤ 63 octets): unbounded
# repeats made a long token without "@" cost quadratic time.
_ADDR = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}"
# A notice is a few KB; what follows a huge one is not read.
_MAX_NOTICE = 64 * 1024
_ADDRESS = re.compile(_ADDR)
# Possessive runs ("*+") wherever two neighbouring runs share characters: the leading
# "[ \t]*[-=*_ ]*[ \t]*" was cubic on a line of spaces. Same language as before.
_ORIGINAL_STARTS = re.compile(
    r"^[ \t]*+[-=*_ ]*+[ \t]*+(below this line is a copy of the message|"
    r"(the )?original message( (follows|as received|details|headers|text)[^\n]*|[ \t]*+[-=*_:]*+[ \t]*+$)|"
    r"this is a copy of the message|unsent message below|start of returned message|returned mail\b|"
    r"attachment is a copy of the message|text of the original message|the message that caused this error)"
    r"|^(Received|Return-Path|Return-path): ",
    re.I | re.M,
)
_LINE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("recipient-line", re.compile(rf"^[ \t]*+(?:\*[ \t]*+)?[<\[]({_ADDR})[>\]][ \t]*+(\([^)\n]*\))?[ \t]*+:", re.M)),
    ("address-colon", re.compile(rf"^[ \t]*+<?({_ADDR})>?:[ \t]*+$", re.M)),
    ("exchange", re.compile(rf"^[ \t]*+(?:[^\n]*?SMTP=)?({_ADDR});?[ \t]++on[ \t]++\w{{3}}", re.M)),
)
_PHRASES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Sendmail names the alias the sender used after the address it expanded to.
    ("expanded-from", re.compile(rf"^[ \t]*\(expanded from:?\s*<?({_ADDR})>?\)[ \t]*$", re.I | re.M)),
    ("addressed-to", re.compile(rf"addressed(?: to)?,?[ \t]+['\"<]?({_ADDR})", re.I)),
    ("message-to", re.compile(rf"your message to:?\s++<?({_ADDR})>?\s++(was|could|has|is)", re.I)),
    ("not-delivered-to", re.compile(rf"(?:not|could not be|couldn't be) delivered to:?\s+<?({_ADDR})>?", re.I)),
    ("attempts", re.compile(rf"delivery failed(?: \d+ attempts)?:\s*<?({_ADDR})", re.I)),
    ("undeliverable-to", re.compile(rf"undeliverable (?:to|for):?\s*<?({_ADDR})", re.I)),
    (
        "sendmail",
        re.compile(
            rf"<?({_ADDR})>?\.\.\.\s++(user unknown|no such|unknown|mailbox|host unknown|refused|deferred)", re.I
        ),
    ),
    (
        "user-unknown",
        re.compile(
            rf"(?:user unknown|unknown user|no such user|invalid recipient|mailbox unavailable)[:\s]++<?({_ADDR})", re.I
        ),
    ),
)
_INTRO = re.compile(
    r"following (e-?mail )?(address(es|\(es\))?|recipients?(\(s\))?|destination addresses)[^\n]{0,80}"
    r"(failed|could not|did not|not be|unknown|rejected|permanent|undeliverable|:)|"
    r"did not reach the following|did not receive (your|this) message|"
    r"(could not|unable to|wasn't able to) deliver (your |this )?(message|mail) to the following|"
    r"message not delivered to the following|failed recipients|permanent fatal errors|"
    r"could not be delivered to the following recipients",
    re.I,
)
_LIST_ITEM = re.compile(rf"^[ \t]*+(?:>[ \t]*+)?(?:[^\s@]*SMTP=|<)?({_ADDR})>?[;,:]?(?:[ \t]|$)", re.M)
_BARE_NAME = re.compile(r"^[ \t]++([A-Za-z0-9._-]{1,64})[ \t]*+$", re.M)
_HEADERISH = re.compile(r"^\s*+>?\s*+(to|from|cc|subject|message-id|sent|date|reply-to|sender)\s*+:", re.I)
_IGNORED_LOCALS = frozenset({"postmaster", "mailer-daemon", "mailer_daemon", "abuse", "hostmaster"})
_TEMPORARY = re.compile(
    r"\bwarning\b|\bdelayed\b|delivery delay|not yet been delivered|will (continue to )?(re)?try|"
    r"still (be )?trying|will be retried|attempts will continue|temporar(y|ily) (failure|error|problem)|\bdeferred\b",
    re.I,
)
# Stronger than a "Warning:" subject: MDaemon titles permanent failures that way.
_PERMANENT = re.compile(
    r"permanent|user unknown|unknown user|no such (user|mailbox|address)|does not exist|"
    r"not (a )?(valid|known)|invalid (recipient|address|mailbox)|account (is )?(disabled|closed)|"
    r"\b5\d\d[ -]|\b5\.\d{1,3}\.\d{1,3}\b",
    re.I,
)


def normalise_address(addr: str) -> str | None:
    """``local@domain`` with the domain lower-cased, or None when it is no addr-spec
    (RFC 5322 §3.4.1 dot-atom: no leading, trailing or doubled dot; anonymised
    reports contain things like "david...@gmail.com")."""
    addr = addr.strip(".,;:'\"<>()[]")
    local, _, domain = addr.rpartition("@")
    if not local or not domain or ".." in local or local.startswith(".") or local.endswith("."):
        return None
    return f"{local}@{domain.lower()}"


def notice_only(notice: str) -> str:
    """The notice without the returned message that usually follows it."""
    notice = notice[:_MAX_NOTICE]
    cut = _ORIGINAL_STARTS.search(notice)
    return notice[: cut.start()] if cut else notice


def scan_notice(
    notice: str, *, ignore: frozenset[str], reporting_domain: str | None = None
) -> tuple[tuple[str, ...], str] | None:
    """(failed addresses, shape name) from a bounce notice, or None if it names none."""
    text = notice_only(notice)
    found: list[tuple[int, str, str]] = []  # (position, address, shape)
    for shape, pattern in (*_LINE_PATTERNS, *_PHRASES):
        for match in pattern.finditer(text):
            group = next(
                (i for i in range(1, (pattern.groups or 0) + 1) if match.group(i) and "@" in match.group(i)), 0
            )
            if group:
                found.append((match.start(group), match.group(group), shape))
    found.extend(_listed(text, reporting_domain))
    shape = "patterns"
    if found:
        found.sort()
        shape = found[0][2]
    else:
        found = [
            (m.start(), m.group(0), "generic") for m in _ADDRESS.finditer(text) if not _in_header_line(text, m.start())
        ]
        shape = "generic"
    addresses = []
    for _, addr, _ in found:
        address = normalise_address(addr)
        if address is None:
            continue
        local = address.rpartition("@")[0].lower()
        if address.lower() not in ignore and local not in _IGNORED_LOCALS:
            addresses.append(address)
    unique = tuple(dict.fromkeys(addresses))
    return (unique, shape) if unique else None


def _listed(text: str, reporting_domain: str | None) -> list[tuple[int, str, str]]:
    """Addresses listed one per line after an intro sentence, until a blank gap."""
    found: list[tuple[int, str, str]] = []
    seen: set[int] = set()
    for intro in _INTRO.finditer(text):
        block_start = text.find("\n", intro.end())
        if block_start < 0 or block_start in seen:
            continue  # intros on one line share their list: read it once
        seen.add(block_start)
        block = _list_block(text, block_start + 1)
        for item in _LIST_ITEM.finditer(block):
            found.append((block_start + 1 + item.start(1), item.group(1), "list"))
        bare = _BARE_NAME.findall(block)
        if not found and reporting_domain and bare and len(bare) == len(block.split("\n")):
            # AOL lists failed screen names alone, without the domain.
            offset = block_start + 1
            found.extend((offset, f"{name}@{reporting_domain}", "list") for name in bare)
    return found


def _list_block(text: str, start: int) -> str:
    """The lines from ``start``, up to the first blank line after some content (at
    most 40 lines: split from ``start`` only, not the whole rest of the notice)."""
    lines: list[str] = []
    while len(lines) < 40 and start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        lines.append(text[start:end])
        start = end + 1
    out: list[str] = []
    seen_content = False
    for line in lines:
        if not line.strip():
            if seen_content:
                break
            continue
        seen_content = True
        out.append(line)
    return "\n".join(out)


def _in_header_line(text: str, position: int) -> bool:
    line_start = text.rfind("\n", 0, position) + 1
    return bool(_HEADERISH.match(text[line_start : line_start + 40]))


_FAILURE_NOTICE = re.compile(
    r"could not be delivered|cannot be delivered|undeliverable|delivery (has )?failed|"
    r"mail delivery software|not delivered|delivery failure|returned to sender",
    re.I,
)


def is_failure_notice(text: str) -> bool:
    """Whether a notice says, in one of the usual phrasings, that delivery failed."""
    return bool(_FAILURE_NOTICE.search(notice_only(text)[:3000]))


def looks_temporary(subject: str, notice: str) -> bool:
    """Whether a text notice reports a delay (a warning) rather than a failure."""
    text = notice_only(notice)[:3000]
    if _PERMANENT.search(text):
        return False
    return bool(_TEMPORARY.search(subject)) or bool(_TEMPORARY.search(text))
