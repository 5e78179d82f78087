"""The gate every Slack listener passes: is this Slack user one the tenant allows to act?

Facts come from the Web API (users.info, conversations.members / usergroups.users.list, cached
briefly in UserDirectory); the decision and its wording are the surface layer's
(bots/surface/access.py). Roles are checked later, by the surface action, on the agent row.
"""

from __future__ import annotations

import logging
import uuid

from bots.slack.ids import VOCABULARY
from bots.slack.runtime import SlackDeps
from bots.surface import actions
from bots.surface.access import MemberFacts, NotAllowed, refusal
from bots.surface.deps import SurfaceUser

log = logging.getLogger(__name__)


def allowed_user(deps: SlackDeps, *, tenant_id: uuid.UUID, channel: str | None, user_id: str) -> SurfaceUser:
    """The user, when the tenant allows them to act here; NotAllowed (with the reason) otherwise."""
    account = deps.users.account(user_id)
    if not account.known:
        raise NotAllowed("Threadline could not look up your Slack account, so it cannot tell whether you may act.")
    rule = actions.access_rule(deps.surface, tenant_id=tenant_id, surface="slack", channel=channel)
    facts = MemberFacts(
        is_bot=account.is_bot or user_id == deps.bot_user_id,
        is_guest=account.is_guest,
        other_workspace=deps.team_id is not None and account.team_id != deps.team_id,
        group=rule.group,
        in_group=rule.group is not None and user_id in deps.users.group_members(rule.group),
        channels=rule.channels,
        in_channel=rule.group is None and any(user_id in deps.users.channel_members(c) for c in rule.channels),
    )
    reason = refusal(facts, VOCABULARY)
    if reason is not None:
        log.info("slack user refused", extra={"user": user_id, "tenant": str(tenant_id), "reason": reason})
        raise NotAllowed(f"You cannot act on Threadline tickets here: {reason}")
    return deps.users.get(user_id)


def request_tenant(deps: SlackDeps, channel: str | None) -> uuid.UUID:
    """This request's tenant: the channel's binding, else the workspace installation's."""
    return actions.tenant_for_request(deps.surface, surface="slack", channel=channel,
                                      workspace_tenant=deps.workspace_tenant, single_workspace=deps.single_workspace)
