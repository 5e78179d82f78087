"""Who may act on tickets from a chat surface: one decision for Slack and Teams.

The adapter gathers the facts (a Web API call or two); this module only decides and says why,
in a sentence the refused person reads (like inbound/ingest/threading.py decides thread rules).
Roles are checked after this, against the agent row (`bots.surface.agents`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bots.surface.vocabulary import Vocabulary
from core.errors import UserError


class NotAllowed(UserError):
    """The person may not do this here; the text says why (shown ephemerally, logged at info)."""


class Need(StrEnum):
    VIEW = "view"  # list tickets, open an original message
    ACT = "act"  # reply, note, assign, change status or priority, drafts, release held mail


@dataclass(frozen=True)
class MemberFacts:
    """What the surface told us about one person, for one tenant's rule."""

    is_bot: bool
    is_guest: bool  # a guest account of the workspace or team
    other_workspace: bool  # a user from outside the installation's workspace or directory tenant
    group: str | None  # the tenant's configured user group, if any
    in_group: bool
    channels: tuple[str, ...]  # the bound channel(s) the rule looks at
    in_channel: bool


def refusal(facts: MemberFacts, vocabulary: Vocabulary) -> str | None:
    """None when the person is allowed; else the reason, addressed to them in the surface's words."""
    if facts.is_bot:
        return "bots do not act on tickets."
    if facts.other_workspace:
        return "you belong to another workspace than this helpdesk's, so you cannot act on its tickets."
    if facts.is_guest:
        return "guest accounts cannot act on tickets; ask a workspace admin for a full account."
    if facts.group is not None:
        # A configured group is the tenant's explicit list: channel membership no longer counts.
        group = vocabulary.user_group(facts.group)
        return None if facts.in_group else f"only members of {group} act on these tickets; ask your admin to add you."
    if not facts.channels:
        return "no Threadline inbox is bound to a channel of this workspace yet."
    if facts.in_channel:
        return None
    names = ", ".join(vocabulary.channel(c) for c in facts.channels)
    return f"only members of {names} act on these tickets; join the channel first."
