"""The Release button on a held mail."""

from __future__ import annotations

import uuid
from typing import Any

from bots.slack import held as held_blocks
from bots.slack.runtime import SlackDeps
from bots.surface import actions, held_actions


def release(body: dict[str, Any], deps: SlackDeps) -> None:
    channel = (body.get("channel") or {}).get("id")
    tenant = actions.tenant_for_channel(deps.surface, surface="slack", channel=channel)
    item = held_actions.release_held(deps.surface, tenant_id=tenant, raw_id=uuid.UUID(str(body["actions"][0]["value"])),
                                     user=deps.users.get(body["user"]["id"]))
    ts = (body.get("message") or {}).get("ts")
    if channel and ts:
        deps.client.chat_update(channel=channel, ts=ts, text=held_blocks.item_text(item),
                                blocks=held_blocks.item_blocks(item))
