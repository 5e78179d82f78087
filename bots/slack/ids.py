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
