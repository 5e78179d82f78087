"""Agents: create by email (no chat account needed), list, role/name changes, deactivate."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict

from admin_api.auth import TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import SessionDep
from admin_api.etags import check_if_match, set_etag
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from core.tenancy import agents as service
from core.tenancy.schemas import AgentCreate, AgentPublic, AgentUpdate
from core.tenancy.service import create_agent
from core.tickets import agent_tokens

router = admin_router("agents")


@router.post("/agents", status_code=201, response_model=AgentPublic)
def create(body: AgentCreate, request: Request, response: Response, session: SessionDep,
           principal: TenantPrincipalDep) -> AgentPublic:
    """An agent who works by mail only; a Slack/Teams identity links itself on first use."""
    agent = create_agent(session=session, tenant_id=principal.require_tenant(),
                         name=body.name or body.email.split("@")[0], email=body.email, role=body.role,
                         audit=audit_context(request, principal))
    response.headers["Location"] = f"{request.url.path}/{agent.id}"
    return AgentPublic.model_validate(agent)


@router.get("/agents", response_model=Page[AgentPublic])
def list_(request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
          active: Annotated[bool | None, Query(description="only active (true) or deactivated (false)")] = None,
          cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[AgentPublic]:
    rows = service.list_agents(session=session, tenant_id=principal.require_tenant(), active=active,
                               after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=AgentPublic.model_validate)


@router.get("/agents/{agent_id}", response_model=AgentPublic)
def show(agent_id: uuid.UUID, response: Response, session: SessionDep, principal: TenantPrincipalDep) -> AgentPublic:
    public = AgentPublic.model_validate(
        service.get_agent(session=session, tenant_id=principal.require_tenant(), agent_id=agent_id))
    set_etag(response, public)
    return public


@router.patch("/agents/{agent_id}", response_model=AgentPublic)
def update(agent_id: uuid.UUID, body: AgentUpdate, request: Request, response: Response, session: SessionDep,
           principal: TenantPrincipalDep) -> AgentPublic:
    agent = service.get_agent(session=session, tenant_id=principal.require_tenant(), agent_id=agent_id, lock=True)
    check_if_match(request, AgentPublic.model_validate(agent))
    service.update_agent(session=session, agent=agent, name=body.name, role=body.role, active=body.active,
                         audit=audit_context(request, principal))
    public = AgentPublic.model_validate(agent)
    set_etag(response, public)
    return public


@router.delete("/agents/{agent_id}", response_model=AgentPublic)
def deactivate(agent_id: uuid.UUID, request: Request, session: SessionDep,
               principal: TenantPrincipalDep) -> AgentPublic:
    """Deactivate (agents are never deleted: tickets and the timeline name them)."""
    agent = service.get_agent(session=session, tenant_id=principal.require_tenant(), agent_id=agent_id, lock=True)
    check_if_match(request, AgentPublic.model_validate(agent))
    service.update_agent(session=session, agent=agent, active=False, audit=audit_context(request, principal))
    return AgentPublic.model_validate(agent)


class NotificationPrefs(BaseModel):
    """Which notification mails the agent gets (issue 16); PUT replaces all four."""

    model_config = ConfigDict(extra="forbid")

    new_tickets: bool  # every new ticket in the tenant's inboxes
    assigned: bool  # a ticket was assigned to them by someone else
    customer_replies: bool  # the customer wrote again on a ticket assigned to them
    drafts: bool  # a draft is ready on a ticket assigned to them


@router.get("/agents/{agent_id}/notifications", response_model=NotificationPrefs)
def notifications(agent_id: uuid.UUID, response: Response, session: SessionDep,
                  principal: TenantPrincipalDep) -> NotificationPrefs:
    agent = service.get_agent(session=session, tenant_id=principal.require_tenant(), agent_id=agent_id)
    public = NotificationPrefs(**agent_tokens.NotifyPrefs.of(agent).as_dict())
    set_etag(response, public)
    return public


@router.put("/agents/{agent_id}/notifications", response_model=NotificationPrefs)
def set_notifications(agent_id: uuid.UUID, body: NotificationPrefs, request: Request, response: Response,
                      session: SessionDep, principal: TenantPrincipalDep) -> NotificationPrefs:
    """The same service as `threadline agents notify`; If-Match guards against a concurrent change."""
    agent = service.get_agent(session=session, tenant_id=principal.require_tenant(), agent_id=agent_id, lock=True)
    check_if_match(request, NotificationPrefs(**agent_tokens.NotifyPrefs.of(agent).as_dict()))
    prefs = agent_tokens.change_prefs(session=session, agent=agent, changes=body.model_dump(),
                                      audit=audit_context(request, principal))
    public = NotificationPrefs(**prefs.as_dict())
    set_etag(response, public)
    return public
