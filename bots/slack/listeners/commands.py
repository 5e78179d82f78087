"""The /threadline slash command."""

from __future__ import annotations

from typing import Any

from bots.slack.runtime import SlackDeps
from bots.surface import actions
from bots.surface.intents import parse_command


def threadline(command: dict[str, Any], deps: SlackDeps) -> str:
    tenant = actions.tenant_for_channel(deps.surface, surface="slack", channel=command.get("channel_id"))
    return actions.run_command(
        deps.surface, tenant_id=tenant, user=deps.users.get(command["user_id"]),
        command=parse_command(command.get("text", "")), resolve_user=deps.users.get,
    )
