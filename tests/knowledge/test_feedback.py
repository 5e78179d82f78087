"""`kb feedback`: draft fates from the drafts table, and questions with no confident answer."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from core.db.session import tenant_scope
from core.runtime import Runtime
from core.tickets.models import Draft, DraftState, Message
from knowledge.feedback import export_feedback
from tests.core.factories import make_ticket
from tests.knowledge.conftest import new_tenant

CITED = [{"title": "Restoring", "source": "/kb/050_restore.rst", "heading": "Restoring", "url": None}]


def test_feedback_counts_fates_lists_gaps_and_which_documents_drafts_cited(kb_runtime: Runtime) -> None:
    tenant_id, (inbox_id,) = new_tenant(kb_runtime, inboxes=1)
    ticket_id, number = make_ticket(kb_runtime, tenant_id=tenant_id, inbox_id=inbox_id, subject="Restore help")
    with tenant_scope(kb_runtime.factory, tenant_id) as session:
        message_id = session.execute(select(Message.id).where(Message.ticket_id == ticket_id)).scalar_one()
        now = datetime.now(UTC)
        rows = [
            ("Hi, run restic restore.", 0.71, DraftState.SENT, None),
            ("Hi, run restic restore.", 0.66, DraftState.EDITED, "Hi, run restic restore --target /tmp."),
            ("Hi, see the docs.", 0.52, DraftState.DISCARDED, None),
            ("Restore help\n\nHello, my backup fails", 0.31, DraftState.NO_ANSWER, None),  # the KB had nothing
        ]
        for text, confidence, state, final in rows:
            session.add(Draft(tenant_id=tenant_id, ticket_id=ticket_id, for_message_id=message_id, text=text,
                              citations=CITED, confidence=confidence, state=state, final_text=final, decided_at=now))
    with tenant_scope(kb_runtime.factory, tenant_id) as session:
        out = export_feedback(session=session, tenant_id=tenant_id, threshold=0.45)
    assert out["summary"] == {"discarded": 1, "edited": 1, "no_answer": 1, "sent": 1}
    assert [(g["ticket_number"], g["question"], g["confidence"], g["closest"]) for g in out["gaps"]] == [
        (number, "Hello, my backup fails", 0.31, CITED)]
    assert [d["edited"] for d in out["drafts"]] == [False, True, False, False]
    assert out["documents"] == {"/kb/050_restore.rst": {"sent": 1, "edited": 1, "discarded": 1}}


def test_another_tenants_drafts_are_not_exported(kb_runtime: Runtime) -> None:
    tenant_id, (inbox_id,) = new_tenant(kb_runtime, inboxes=1)
    ticket_id, _ = make_ticket(kb_runtime, tenant_id=tenant_id, inbox_id=inbox_id)
    with tenant_scope(kb_runtime.factory, tenant_id) as session:
        session.add(Draft(tenant_id=tenant_id, ticket_id=ticket_id, text="x", citations=[], confidence=0.9))
    other, _ = new_tenant(kb_runtime)
    with tenant_scope(kb_runtime.factory, other) as session:
        assert export_feedback(session=session, tenant_id=other, threshold=0.45)["drafts"] == []
