"""Draft card buttons and the Edit modal."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bots.slack import blocks
from bots.slack.access import allowed_user, request_tenant
from bots.slack.runtime import SlackDeps
from bots.surface import actions, draft_actions
from bots.surface.access import Need
from bots.surface.deps import SurfaceUser


def _tenant(body: dict[str, Any], deps: SlackDeps) -> uuid.UUID:
    return request_tenant(deps, (body.get("channel") or {}).get("id"))


def _user(body: dict[str, Any], deps: SlackDeps, tenant_id: uuid.UUID, channel: str | None = None) -> SurfaceUser:
    channel = channel or (body.get("channel") or {}).get("id")
    return allowed_user(deps, tenant_id=tenant_id, channel=channel, user_id=body["user"]["id"])


def _draft_id(body: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(str(body["actions"][0]["value"]))


def send(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _tenant(body, deps)
    draft_actions.send_draft(deps.surface, tenant_id=tenant, draft_id=_draft_id(body), user=_user(body, deps, tenant))


def discard(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _tenant(body, deps)
    draft_actions.discard_draft(deps.surface, tenant_id=tenant, draft_id=_draft_id(body),
                                user=_user(body, deps, tenant))


def regenerate(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _tenant(body, deps)
    _text, ticket_id = draft_actions.draft_text(deps.surface, tenant_id=tenant, draft_id=_draft_id(body))
    ref = actions.ticket_ref(deps.surface, tenant_id=tenant, ticket_id=ticket_id)
    draft_actions.request_draft(deps.surface, ref=ref, user=_user(body, deps, tenant))


def open_edit(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _tenant(body, deps)
    actions.require(deps.surface, tenant_id=tenant, user=_user(body, deps, tenant), need=Need.ACT)
    text, _ticket = draft_actions.draft_text(deps.surface, tenant_id=tenant, draft_id=_draft_id(body))
    view = blocks.edit_draft_modal(draft_id=str(_draft_id(body)), text=text)
    view.private_metadata = json.dumps({"draft_id": str(_draft_id(body)), "tenant_id": str(tenant),
                                        "channel": (body.get("channel") or {}).get("id")})
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def edit_submitted(body: dict[str, Any], view: dict[str, Any], deps: SlackDeps) -> None:
    meta = json.loads(view.get("private_metadata") or "{}")
    text = view["state"]["values"]["reply"]["text"]["value"] or ""
    tenant = uuid.UUID(meta["tenant_id"])
    draft_actions.send_draft(deps.surface, tenant_id=tenant, draft_id=uuid.UUID(meta["draft_id"]),
                             user=_user(body, deps, tenant, meta.get("channel")), edited_text=text)
