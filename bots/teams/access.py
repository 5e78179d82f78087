"""The gate every Teams listener passes: is this Teams user one the tenant allows to act?

Teams only delivers a channel's messages and card actions from members of its team, so channel
membership is given by the request; the facts gathered here are the Azure AD tenant (with
TEAMS_TENANT_ID, only that tenant's users), guest accounts and bots. The decision and its wording
are the surface layer's (bots/surface/access.py); roles are checked later on the agent row.
"""

from __future__ import annotations

import logging
import uuid

from bots.surface import actions
from bots.surface.access import MemberFacts, NotAllowed, refusal
from bots.surface.deps import SurfaceUser
from bots.teams.activity import Incoming
from bots.teams.ids import SURFACE, VOCABULARY
from bots.teams.runtime import TeamsDeps

log = logging.getLogger(__name__)


def allowed_user(deps: TeamsDeps, *, tenant_id: uuid.UUID, incoming: Incoming) -> SurfaceUser:
    """The user, when the tenant allows them to act here; NotAllowed (with the reason) otherwise."""
    sender = incoming.sender
    if not sender.aad_object_id:
        raise NotAllowed("Threadline could not tell who you are in Azure AD, so it cannot tell whether you may act.")
    member = deps.users.member(sender, service_url=incoming.service_url, conversation_id=incoming.conversation_id)
    if not member.known:
        raise NotAllowed("Threadline could not look up your Teams account, so it cannot tell whether you may act.")
    expected = deps.surface.settings.teams_tenant_id
    rule = actions.access_rule(deps.surface, tenant_id=tenant_id, surface=SURFACE, channel=incoming.channel_id)
    facts = MemberFacts(
        is_bot=incoming.from_bot,
        is_guest=member.is_guest,
        other_workspace=expected is not None and (incoming.aad_tenant or member.aad_tenant) != expected,
        group=None,  # Teams has no user-group rule yet: the bound channel's team decides
        in_group=False,
        channels=rule.channels,
        in_channel=incoming.channel_id in rule.channels,
    )
    reason = refusal(facts, VOCABULARY)
    if reason is not None:
        log.info("teams user refused", extra={"user": sender.aad_object_id, "tenant": str(tenant_id),
                                              "reason": reason})
        raise NotAllowed(f"You cannot act on Threadline tickets here: {reason}")
    return SurfaceUser(SURFACE, sender.aad_object_id, sender.name, member.email)
