"""Modal submissions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bots.slack.access import allowed_user, request_tenant
from bots.slack.runtime import SlackDeps
from bots.surface import actions


def reply_submitted(body: dict[str, Any], view: dict[str, Any], deps: SlackDeps) -> None:
    meta = json.loads(view.get("private_metadata") or "{}")
    text = view["state"]["values"]["reply"]["text"]["value"] or ""
    ticket_id = uuid.UUID(meta["ticket_id"])
    # The submission carries no channel: the modal's opener stored the tenant and channel.
    channel = meta.get("channel")
    tenant = uuid.UUID(meta["tenant_id"]) if meta.get("tenant_id") else request_tenant(deps, channel)
    ref = actions.ticket_ref(deps.surface, tenant_id=tenant, ticket_id=ticket_id)
    user = allowed_user(deps, tenant_id=tenant, channel=channel, user_id=body["user"]["id"])
    actions.reply_to_customer(deps.surface, ref=ref, user=user, text=text)
