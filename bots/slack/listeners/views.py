"""Modal submissions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bots.slack.runtime import SlackDeps
from bots.surface import actions


def reply_submitted(body: dict[str, Any], view: dict[str, Any], deps: SlackDeps) -> None:
    meta = json.loads(view.get("private_metadata") or "{}")
    text = view["state"]["values"]["reply"]["text"]["value"] or ""
    ticket_id = uuid.UUID(meta["ticket_id"])
    tenant = actions.tenant_for_channel(deps.surface, surface="slack", channel=None) if not meta.get("tenant_id") \
        else uuid.UUID(meta["tenant_id"])
    ref = actions.ticket_ref(deps.surface, tenant_id=tenant, ticket_id=ticket_id)
    actions.reply_to_customer(deps.surface, ref=ref, user=deps.users.get(body["user"]["id"]), text=text)
