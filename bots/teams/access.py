"""The gate every Teams listener passes: is this Teams user one the tenant allows to act?

Teams only delivers a channel's messages and card actions from members of its team, so channel
membership is given by the request; the facts gathered here are the Azure AD tenant (with
TEAMS_TENANT_ID, only that tenant's users), guest accounts, bots, and, when the inbox names a
team (`inbox set --teams-team`), that team's roster from the Bot Connector (Slack's user group).
The decision and its wording are the surface layer's (bots/surface/access.py); roles are checked
later on the agent row.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from bots.surface import actions
from bots.surface.access import MemberFacts, NotAllowed, refusal
from bots.surface.deps import SurfaceUser
from bots.teams.activity import Incoming, TeamsUser
from bots.teams.ids import SURFACE, VOCABULARY
from bots.teams.runtime import TeamsDeps
from core.db.session import tenant_scope
from core.tenancy.models import Inbox

log = logging.getLogger(__name__)


def team_rule(deps: TeamsDeps, *, tenant_id: uuid.UUID, channel_id: str | None) -> str | None:
    """The team whose members alone act on this channel's inbox (`inbox set --teams-team`), if set."""
    where = [Inbox.tenant_id == tenant_id, Inbox.teams_team_id.is_not(None)]
    where.append(Inbox.teams_channel_id == channel_id if channel_id else Inbox.teams_channel_id.is_not(None))
    with tenant_scope(deps.surface.factory, tenant_id) as session:
        teams = session.execute(select(Inbox.teams_team_id).where(*where)).all()
    found = sorted({t for (t,) in teams if t})
    return found[0] if found else None


def _check(deps: TeamsDeps, *, tenant_id: uuid.UUID, user: TeamsUser, incoming: Incoming,
           is_bot: bool) -> SurfaceUser:
    member = deps.users.member(user, service_url=incoming.service_url, conversation_id=incoming.conversation_id)
    if not member.known:
        raise NotAllowed("Threadline could not look up this Teams account, so it cannot tell whether it may act.")
    aad_object_id = user.aad_object_id or member.aad_object_id
    if not aad_object_id:
        raise NotAllowed("Threadline could not tell who this is in Azure AD, so it cannot tell whether they may act.")
    expected = deps.surface.settings.teams_tenant_id
    rule = actions.access_rule(deps.surface, tenant_id=tenant_id, surface=SURFACE, channel=incoming.channel_id)
    team = team_rule(deps, tenant_id=tenant_id, channel_id=incoming.channel_id)
    facts = MemberFacts(
        is_bot=is_bot,
        is_guest=member.is_guest,
        other_workspace=expected is not None and (member.aad_tenant or incoming.aad_tenant) != expected,
        # Like Slack's user group: a configured team is the explicit list, its roster decides.
        group=team,
        in_group=team is not None and deps.users.in_team(team, user, service_url=incoming.service_url),
        channels=rule.channels,
        in_channel=incoming.channel_id in rule.channels,
    )
    reason = refusal(facts, VOCABULARY)
    if reason is not None:
        log.info("teams user refused", extra={"user": aad_object_id, "tenant": str(tenant_id), "reason": reason})
        raise NotAllowed(reason)
    return SurfaceUser(SURFACE, aad_object_id, member.name or user.name, member.email)


def allowed_user(deps: TeamsDeps, *, tenant_id: uuid.UUID, incoming: Incoming) -> SurfaceUser:
    """The sender, when the tenant allows them to act here; NotAllowed (with the reason) otherwise."""
    if not incoming.sender.aad_object_id:
        raise NotAllowed("Threadline could not tell who you are in Azure AD, so it cannot tell whether you may act.")
    try:
        return _check(deps, tenant_id=tenant_id, user=incoming.sender, incoming=incoming, is_bot=incoming.from_bot)
    except NotAllowed as exc:
        raise NotAllowed(f"You cannot act on Threadline tickets here: {exc}") from None


def allowed_assignee(deps: TeamsDeps, *, tenant_id: uuid.UUID, incoming: Incoming, user: TeamsUser) -> SurfaceUser:
    """A person @mentioned in a command (`assign 123 @Ann`), when the same rule lets them act."""
    try:
        return _check(deps, tenant_id=tenant_id, user=user, incoming=incoming, is_bot=user.id.startswith("28:"))
    except NotAllowed as exc:
        raise NotAllowed(f"{user.name} cannot be assigned: {exc}") from None
