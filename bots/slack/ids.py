"""Slack callback ids, reactions and words: one StrEnum, no string literals in listeners. Action ids
(`ActionId`) are the surface layer's, the same names on every surface."""

import re
from enum import StrEnum

from bots.surface.ids import ActionId as ActionId
from bots.surface.vocabulary import Vocabulary


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
    return f"the user group <!subteam^{group_id}>"


def _channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


# How the shared texts (help, usage errors, refusals) name things in Slack.
VOCABULARY = Vocabulary(command="/threadline", mention_example="@ann", user_group=_user_group, channel=_channel)
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")  # one word of a command: linear, bounded by the word


def mentioned_user(word: str) -> str | None:
    """The user id of a Slack mention (`<@U123>` or `<@U123|ann>`), else None."""
    found = _MENTION.fullmatch(word)
    return found.group(1) if found else None
