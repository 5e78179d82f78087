"""Slack action ids, callback ids and reactions: one StrEnum, no string literals in listeners."""

from enum import StrEnum


class ActionId(StrEnum):
    ASSIGN_ME = "tl_assign_me"
    PRIORITY = "tl_priority"
    RESOLVE = "tl_resolve"
    REOPEN = "tl_reopen"
    REPLY = "tl_reply_to_customer"
    UNDO = "tl_undo"
    MAKE_INTERNAL = "tl_make_internal"
    VIEW_ORIGINAL = "tl_view_original"


class CallbackId(StrEnum):
    REPLY_MODAL = "tl_reply_modal"
    REPLY_SHORTCUT = "tl_reply_shortcut"


class Reaction(StrEnum):
    NOTE = "memo"
    SENT = "white_check_mark"
    FAILED = "x"
    PENDING = "hourglass_flowing_sand"


SURFACE = "slack"
