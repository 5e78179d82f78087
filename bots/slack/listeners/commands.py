"""The /threadline slash command."""

from __future__ import annotations

from typing import Any

from bots.slack.access import allowed_user, request_tenant
from bots.slack.ids import VOCABULARY, mentioned_user
from bots.slack.runtime import SlackDeps
from bots.surface import actions
from bots.surface.deps import SurfaceUser
from bots.surface.intents import parse_command


def threadline(command: dict[str, Any], deps: SlackDeps) -> str:
    # From a DM or an unbound channel the tenant is the workspace installation's, never a guess.
    channel = command.get("channel_id")
    tenant = request_tenant(deps, channel)

    def allowed(user_id: str) -> SurfaceUser:  # the assignee of `assign` must be allowed too
        return allowed_user(deps, tenant_id=tenant, channel=channel, user_id=user_id)

    return actions.run_command(
        deps.surface, tenant_id=tenant, user=allowed(command["user_id"]),
        command=parse_command(command.get("text", ""), vocabulary=VOCABULARY, mention=mentioned_user),
        vocabulary=VOCABULARY, resolve_user=allowed,
    )
