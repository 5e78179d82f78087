"""What a held mail looks like on any surface (Slack, Teams): decided once, rendered per adapter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from core.tickets.held import HeldMail


@dataclass(frozen=True)
class HeldDigestHeader:
    """The parent message of one inbox's held mail of one day; items are its thread replies."""

    inbox: str
    day: date

    @property
    def text(self) -> str:
        return (f"Held mail for {self.inbox}, {self.day.isoformat()}: mail that did not become a ticket "
                f"(automatic, loops, bounces of mail we did not send, rate caps). Release one to process it "
                f"as a normal mail.")


@dataclass(frozen=True)
class HeldItem:
    raw_id: uuid.UUID
    sender: str
    subject: str
    reason: str
    released_by: str | None = None

    @property
    def summary(self) -> str:
        return f"{self.sender}: {self.subject}"


def held_item(mail: HeldMail, *, released_by: str | None = None) -> HeldItem:
    return HeldItem(raw_id=mail.raw_id, sender=mail.sender, subject=mail.subject, reason=mail.reason,
                    released_by=released_by)
