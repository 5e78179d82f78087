"""Accept a Teams activity durably before answering it (issue 13).

In one transaction, before the 200: the activity's delivery key goes into `seen_events` (a repeat
finds it and adds nothing) and the activity itself into an outbox job (`teams.activity`, or
`teams.invoke` for a card action). A crash after the answer loses nothing: a worker runs the job.
The same transaction remembers where the activity came from: the Azure AD tenant's regional
service URL (allow-listed hosts only) and the channel's tenant, for new threads (`region_url`).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from bots.surface import actions
from bots.teams.activity import Incoming
from bots.teams.connector import ServiceUrlRefusedError, check_service_url
from bots.teams.ids import SURFACE
from bots.teams.runtime import TeamsDeps
from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.outbox import enqueue
from core.settings import Settings
from core.surfaces.models import SeenEvent, TeamsChannelTenant, TeamsServiceUrl

log = logging.getLogger(__name__)

ACTIVITY_JOB = "teams.activity"
INVOKE_JOB = "teams.invoke"
MESSAGE_TYPES = ("message", "messageUpdate", "messageDelete")


def delivery_key(incoming: Incoming) -> str:
    """What makes a delivery the same delivery: an edit keeps its message's id, so its text counts."""
    extra = incoming.text if incoming.type == "messageUpdate" else ""
    digest = hashlib.sha256(f"{incoming.conversation_id}\n{incoming.id}\n{extra}".encode()).hexdigest()[:40]
    return f"{incoming.type}:{digest}"


def job_for(incoming: Incoming) -> str | None:
    """The job that handles this activity later, or None: nothing for a worker to do."""
    if not incoming.id:
        return None
    if incoming.type in MESSAGE_TYPES:
        return ACTIVITY_JOB
    return INVOKE_JOB if incoming.type == "invoke" else None


def _remember_region(session: Session, settings: Settings, incoming: Incoming) -> None:
    """The tenant's service URL and the channel's tenant, written only when they changed."""
    if not incoming.aad_tenant or not incoming.service_url:
        return
    try:
        url = check_service_url(settings, incoming.service_url)
    except ServiceUrlRefusedError:
        log.warning("teams service URL not remembered: host not allow-listed",
                    extra={"aad_tenant": incoming.aad_tenant})
        return
    urls = insert(TeamsServiceUrl).values(aad_tenant_id=incoming.aad_tenant[:64], service_url=url)
    session.execute(urls.on_conflict_do_update(
        index_elements=[TeamsServiceUrl.aad_tenant_id],
        set_={"service_url": urls.excluded.service_url, "updated_at": func.now()},
        where=TeamsServiceUrl.service_url != urls.excluded.service_url))
    if incoming.channel_id:
        owner = insert(TeamsChannelTenant).values(channel_id=incoming.channel_id[:256],
                                                  aad_tenant_id=incoming.aad_tenant[:64])
        session.execute(owner.on_conflict_do_update(
            index_elements=[TeamsChannelTenant.channel_id],
            set_={"aad_tenant_id": owner.excluded.aad_tenant_id, "updated_at": func.now()},
            where=TeamsChannelTenant.aad_tenant_id != owner.excluded.aad_tenant_id))


def region_url(session: Session, settings: Settings, channel_id: str | None) -> str:
    """The service URL for a new conversation in this channel: its Azure AD tenant's (as its
    activities last said), else TEAMS_TENANT_ID's, else TEAMS_API_URL."""
    aad = None
    if channel_id:
        aad = session.execute(select(TeamsChannelTenant.aad_tenant_id).where(
            TeamsChannelTenant.channel_id == channel_id)).scalar_one_or_none()
    aad = aad or settings.teams_tenant_id
    if aad:
        url = session.execute(select(TeamsServiceUrl.service_url).where(
            TeamsServiceUrl.aad_tenant_id == aad)).scalar_one_or_none()
        if url:
            return url
    return settings.teams_api_url


def accept(deps: TeamsDeps, incoming: Incoming, body: dict[str, Any]) -> int | None:
    """Store the activity with its job before it is answered; the job's outbox id, or None when
    this is a repeat delivery or nothing of ours (no job, or a channel no inbox is bound to)."""
    job = job_for(incoming)
    tenant: uuid.UUID | None = None
    if job is not None:
        tenant = actions.tenant_for_channel(deps.surface, surface=SURFACE, channel=incoming.channel_id)
    with system_scope(deps.surface.factory) as session:
        _remember_region(session, deps.surface.settings, incoming)
        if job is None or tenant is None:
            return None
        first = session.execute(insert(SeenEvent).values(surface=SURFACE, event_id=delivery_key(incoming))
                                .on_conflict_do_nothing().returning(SeenEvent.event_id)).first()
        if first is None:
            return None
        row = enqueue(session=session, tenant_id=tenant, job=job, payload={"activity": body})
        session.flush()
        return row.id


def original_pending(deps: TeamsDeps, *, tenant_id: uuid.UUID, incoming: Incoming) -> bool:
    """Whether the message an edit or delete is about is stored but not handled yet: jobs may run
    out of order, and an edit must not be dropped because it overtook its message."""
    activity = OutboxRow.payload["activity"]
    with tenant_scope(deps.surface.factory, tenant_id) as session:
        return session.execute(select(OutboxRow.id).where(
            OutboxRow.tenant_id == tenant_id, OutboxRow.job == ACTIVITY_JOB,
            OutboxRow.status.in_([OutboxStatus.PENDING, OutboxStatus.ENQUEUED, OutboxStatus.RUNNING]),
            activity["type"].astext == "message", activity["id"].astext == incoming.id,
            activity["conversation"]["id"].astext == incoming.conversation_id).limit(1)).first() is not None


def resend(deps: TeamsDeps, *, tenant_id: uuid.UUID, activity: dict[str, Any]) -> int:
    """Handle a stored activity again (the Retry button): a new job, no dedupe at the door
    (the thread message's own key, channel + activity id, still makes one reply at most)."""
    with system_scope(deps.surface.factory) as session:
        row = enqueue(session=session, tenant_id=tenant_id, job=ACTIVITY_JOB, payload={"activity": activity})
        session.flush()
        return row.id
