"""The Release button on a held mail."""

from __future__ import annotations

import uuid
from typing import Any

from bots.slack import held as held_blocks
from bots.slack.access import allowed_user, request_tenant
from bots.slack.runtime import SlackDeps
from bots.surface import held_actions


def release(body: dict[str, Any], deps: SlackDeps) -> None:
    channel = (body.get("channel") or {}).get("id")
    tenant = request_tenant(deps, channel)
    user = allowed_user(deps, tenant_id=tenant, channel=channel, user_id=body["user"]["id"])
    item = held_actions.release_held(deps.surface, tenant_id=tenant, raw_id=uuid.UUID(str(body["actions"][0]["value"])),
                                     user=user)
    ts = (body.get("message") or {}).get("ts")
    if channel and ts:
        deps.client.chat_update(channel=channel, ts=ts, text=held_blocks.item_text(item),
                                blocks=held_blocks.item_blocks(item))
