"""What became of KB drafts, and the questions the KB could not answer (`kb feedback`).

Reads the `drafts` table (written by the draft job): each draft's fate (pending, sent, edited,
discarded, stale), its confidence and citations, and the customer question it answered. A
"gap" is a question with no confident answer: a `no_answer` row (the job stores the question
and the closest passages there), or any row whose confidence is below the threshold.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.tickets.models import Draft, DraftState, Message, Ticket


def _question(message: Message | None) -> str | None:
    if message is None:
        return None
    return (message.reply_text or message.body_text or "").strip() or None


def export_feedback(
    *, session: Session, tenant_id: uuid.UUID, threshold: float, since: datetime | None = None
) -> dict[str, Any]:
    stmt = (
        select(Draft, Ticket.number, Ticket.subject, Message)
        .join(Ticket, Ticket.id == Draft.ticket_id)
        .outerjoin(Message, Message.id == Draft.for_message_id)
        .where(Draft.tenant_id == tenant_id, Ticket.tenant_id == tenant_id)
        .order_by(Draft.created_at)
    )
    if since is not None:
        stmt = stmt.where(Draft.created_at >= since)
    drafts: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    fates: Counter[str] = Counter()
    cited: dict[str, Counter[str]] = {}
    for draft, number, subject, message in session.execute(stmt).all():
        state = DraftState(draft.state).value
        question = _question(message)
        row = {
            "id": str(draft.id),
            "ticket_number": number,
            "subject": subject,
            "question": question,
            "state": state,
            "confidence": draft.confidence,
            "citations": draft.citations,
            "edited": draft.final_text is not None and draft.final_text.strip() != draft.text.strip(),
            "created_at": draft.created_at.isoformat(),
            "decided_at": draft.decided_at.isoformat() if draft.decided_at else None,
        }
        fates[state] += 1
        if draft.state is DraftState.NO_ANSWER or draft.confidence < threshold:
            gaps.append({"ticket_number": number, "subject": subject, "question": question or draft.text,
                         "confidence": draft.confidence, "closest": draft.citations, "created_at": row["created_at"]})
        else:
            for c in draft.citations or []:
                cited.setdefault(str(c.get("source") or c.get("title")), Counter())[state] += 1
        drafts.append(row)
    return {
        "threshold": threshold,
        "summary": dict(sorted(fates.items())),
        "drafts": drafts,
        "gaps": gaps,
        "documents": {source: dict(counts) for source, counts in sorted(cited.items())},
    }
