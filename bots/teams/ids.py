"""Teams Action.Execute verbs and fixed names: one StrEnum, no string literals in listeners."""

from enum import StrEnum

from bots.surface.vocabulary import Vocabulary, plain_channel


class Verb(StrEnum):
    ASSIGN_ME = "tl_assign_me"
    PRIORITY = "tl_priority"
    RESOLVE = "tl_resolve"
    REOPEN = "tl_reopen"
    REPLY = "tl_reply_to_customer"
    UNDO = "tl_undo"
    MAKE_INTERNAL = "tl_make_internal"
    SEND_DRAFT = "tl_send_draft"
    EDIT_DRAFT = "tl_edit_draft"  # the card's text input carries the edit
    DISCARD_DRAFT = "tl_discard_draft"
    REGENERATE_DRAFT = "tl_regenerate_draft"
    RELEASE_HELD = "tl_release_held"
    RETRY_REPLY = "tl_retry_reply"  # a failed message's stored activity, handled again
    VIEW_ORIGINAL = "tl_view_original"  # Action.Submit opening a task/fetch dialog


class Input(StrEnum):
    """Adaptive Card input ids: Teams merges their values into the action's data."""

    PRIORITY = "priority"
    REPLY = "reply"
    DRAFT = "draft_text"


SURFACE = "teams"
BOT_ISSUER = "https://api.botframework.com"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

def _team(team_id: str) -> str:  # an inbox's team rule (inboxes.teams_team_id) is Teams' user group
    return f"the Teams team {team_id}"


# How the shared texts (help, usage errors, refusals) name things in Teams.
VOCABULARY = Vocabulary(command="@Threadline", mention_example="@Ann", user_group=_team, channel=plain_channel)
