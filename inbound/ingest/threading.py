"""Thread resolution (architecture §5), as a pure decision over facts the pipeline looked up.

Order: (1) In-Reply-To / References against Message-IDs we stored or sent, (2) the reply token
of a plus address, (3) a subject tag [TL-123] when the sender is on that ticket, (4) new ticket.
The rule and a human-readable reason are stored on the message.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

_TAG = re.compile(r"\[TL-(\d{1,9})\]", re.I)


class ThreadRule(StrEnum):
    IN_REPLY_TO = "in-reply-to"
    REFERENCES = "references"
    REPLY_TOKEN = "reply-token"
    SUBJECT_TAG = "subject-tag"
    NEW = "new"


@dataclass(frozen=True)
class KnownTicket:
    id: uuid.UUID
    number: int


@dataclass(frozen=True)
class ThreadFacts:
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    by_message_id: Mapping[str, KnownTicket]  # Message-IDs we stored or sent → their ticket
    by_token: KnownTicket | None
    by_tag: KnownTicket | None
    sender_on_tagged_ticket: bool


@dataclass(frozen=True)
class ThreadDecision:
    rule: ThreadRule
    reason: str
    ticket: KnownTicket | None


def subject_tag(subject: str) -> int | None:
    match = _TAG.search(subject or "")
    return int(match.group(1)) if match else None


def resolve_thread(facts: ThreadFacts) -> ThreadDecision:
    for mid in facts.in_reply_to:
        if mid in facts.by_message_id:
            t = facts.by_message_id[mid]
            return ThreadDecision(ThreadRule.IN_REPLY_TO, f"In-Reply-To <{mid}> is a message of ticket #{t.number}", t)
    # Newest reference first: the last entry is the parent (RFC 5322 §3.6.4).
    for mid in reversed(facts.references):
        if mid in facts.by_message_id:
            t = facts.by_message_id[mid]
            return ThreadDecision(ThreadRule.REFERENCES, f"References <{mid}> is a message of ticket #{t.number}", t)
    if facts.by_token is not None:
        t = facts.by_token
        return ThreadDecision(ThreadRule.REPLY_TOKEN, f"sent to the reply address of ticket #{t.number}", t)
    if facts.by_tag is not None:
        t = facts.by_tag
        if facts.sender_on_tagged_ticket:
            return ThreadDecision(ThreadRule.SUBJECT_TAG, f"subject tag [TL-{t.number}] and the sender is on it", t)
        return ThreadDecision(
            ThreadRule.NEW, f"subject tag [TL-{t.number}] ignored: the sender is not on that ticket; new ticket", None
        )
    return ThreadDecision(ThreadRule.NEW, "no known Message-ID, reply token or subject tag: new ticket", None)
