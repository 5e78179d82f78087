"""Result vocabularies, per-method outcomes and small shared helpers of sender authentication.

The words are RFC 8601 §2.7's, narrowed to the ones we emit; anything else a relay
reports is mapped onto them (see ``auth_relay``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from inbound.email.headers import single_line

# Reason fragments may quote attacker-controlled text (a d= tag, a TXT record): one
# line, bounded, so a stored reason can neither inject lines nor grow without limit.
MAX_REASON_CHARS = 300
_HEADER_END = re.compile(rb"\r?\n\r?\n")  # RFC 5322 §2.1: an empty line ends the header section


class SpfResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DkimResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DmarcResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True)
class SpfOutcome:
    result: SpfResult
    domain: str | None  # the identity checked: MAIL FROM domain, or HELO when MAIL FROM is null
    reason: str


@dataclass(frozen=True)
class DkimOutcome:
    result: DkimResult
    domains: tuple[str, ...]  # d= of the signatures that verified
    reason: str


@dataclass(frozen=True)
class DmarcOutcome:
    result: DmarcResult
    policy: str | None  # none | quarantine | reject, as published for the From domain
    reason: str


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """One line of at most ``limit`` characters, for reasons that quote outside text."""
    text = " ".join(single_line(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header_block(raw: bytes, limit: int | None = None) -> bytes:
    """The header section of ``raw`` (all of it if there is no body), cut to ``limit`` bytes first."""
    head = raw if limit is None else raw[:limit]
    end = _HEADER_END.search(head)
    return head[: end.start()] if end else head
