"""The job that drafts an answer when a customer writes (or an agent asks).

Retrieval and writing happen outside any transaction (embedding takes milliseconds, an LLM
seconds); the result is stored through core's draft service, which makes older pending drafts
stale and records everything in the ticket timeline. After a human's public reply the bot stays
quiet unless asked again (architecture §6).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from core.jobs import effects
from core.jobs.outbox import record_events
from core.registry import JobContext
from core.settings import Settings
from core.tickets import drafts, service
from core.tickets.events import EventKind
from core.tickets.models import Direction, Message
from knowledge.service import Knowledge

DRAFT_JOB = "knowledge.draft"
# Mail the pipeline flagged as automatic is no question for the knowledge base.
_NOT_A_QUESTION = frozenset({"auto-reply", "bounce", "list", "loop"})

_cache: OrderedDict[int, Knowledge] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 4  # a worker has one factory; tests make one per test and must not keep them all


def knowledge_for(settings: Settings, factory: sessionmaker[Session]) -> Knowledge:
    """One Knowledge per session factory (the embedding model itself is shared, see make_embedder)."""
    with _cache_lock:
        knowledge = _cache.get(id(factory))
        if knowledge is None or knowledge.factory is not factory:
            knowledge = _cache[id(factory)] = Knowledge.from_settings(settings, factory)
        _cache.move_to_end(id(factory))
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return knowledge


def draft_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    ticket_id = uuid.UUID(payload["ticket_id"])
    asked = payload.get("event") == EventKind.DRAFT_REQUESTED
    if not asked and payload.get("direction") != Direction.INBOUND.value:
        return
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        latest = session.execute(
            select(Message).where(Message.ticket_id == ticket_id, Message.direction == Direction.INBOUND)
            .order_by(Message.created_at.desc()).limit(1)
        ).scalar_one_or_none()
        if latest is None or (not asked and _NOT_A_QUESTION & set(latest.flags or [])):
            return
        if not asked and drafts.human_replied(session=session, ticket_id=ticket_id):
            # The customer wrote again after a person answered: old drafts are stale, no new one.
            stale = drafts.supersede_pending(session=session, ticket=ticket)
            if ctx.registry is not None:
                record_events(session=session, registry=ctx.registry, events=stale)
            return
        question = f"{ticket.subject}\n\n{latest.reply_text or latest.body_text}".strip()
        inbox_id, message_id = ticket.inbox_id, latest.id
    answer = knowledge_for(ctx.settings, ctx.session_factory).answer(question, tenant_id=ctx.tenant_id,
                                                                     inbox_id=inbox_id)
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id, for_update=True)
        # At most one draft per customer message (or per agent's request): the key commits with
        # the draft, so a retry after a crash past this commit makes none (issue 10).
        key = f"{DRAFT_JOB}:request:{ctx.outbox_id}" if asked else f"{DRAFT_JOB}:message:{message_id}"
        if not effects.claim_once(session, tenant_id=ctx.tenant_id, key=key, outbox_id=ctx.outbox_id):
            return
        if answer.draft is not None:
            citations = [{**c, "unverified": answer.draft.unverified} for c in answer.draft.citations_json()]
            out = drafts.propose(session=session, ticket=ticket, for_message_id=message_id, text=answer.draft.text,
                                 citations=citations, confidence=answer.draft.confidence, answered=True)
        else:
            closest = [{"title": h.title, "source": h.source, "heading": h.heading, "url": h.url}
                       for h in answer.hits[:3]]
            out = drafts.propose(session=session, ticket=ticket, for_message_id=message_id, text=question,
                                 citations=closest, confidence=answer.confidence, answered=False)
        if ctx.registry is not None:
            record_events(session=session, registry=ctx.registry, events=out.events)
