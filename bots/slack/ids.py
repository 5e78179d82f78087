"""Slack action ids, callback ids, reactions and words: one StrEnum, no string literals in listeners."""

import re
from enum import StrEnum

from bots.surface.vocabulary import Vocabulary


class ActionId(StrEnum):
    ASSIGN_ME = "tl_assign_me"
    PRIORITY = "tl_priority"
    RESOLVE = "tl_resolve"
    REOPEN = "tl_reopen"
    REPLY = "tl_reply_to_customer"
    UNDO = "tl_undo"
    MAKE_INTERNAL = "tl_make_internal"
    VIEW_ORIGINAL = "tl_view_original"
    SEND_DRAFT = "tl_send_draft"
    EDIT_DRAFT = "tl_edit_draft"
    DISCARD_DRAFT = "tl_discard_draft"
    REGENERATE_DRAFT = "tl_regenerate_draft"
    RELEASE_HELD = "tl_release_held"
    RETRY_REPLY = "tl_retry_reply"  # on the ephemeral report of an agent's failed thread reply


class CallbackId(StrEnum):
    REPLY_MODAL = "tl_reply_modal"
    REPLY_SHORTCUT = "tl_reply_shortcut"
    EDIT_DRAFT_MODAL = "tl_edit_draft_modal"


class Reaction(StrEnum):
    NOTE = "memo"
    SENT = "white_check_mark"
    FAILED = "x"
    PENDING = "hourglass_flowing_sand"


SURFACE = "slack"


def _user_group(group_id: str) -> str:
    return f"<!subteam^{group_id}>"


def _channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


# How the shared texts (help, usage errors, refusals) name things in Slack.
VOCABULARY = Vocabulary(command="/threadline", mention_example="@ann", user_group=_user_group, channel=_channel)
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")  # one word of a command: linear, bounded by the word


def mentioned_user(word: str) -> str | None:
    """The user id of a Slack mention (`<@U123>` or `<@U123|ann>`), else None."""
    found = _MENTION.fullmatch(word)
    return found.group(1) if found else None
