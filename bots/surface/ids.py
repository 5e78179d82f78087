"""The names of the things an agent can press, the same on every surface (Slack action_id, Teams verb)."""

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
    RETRY_REPLY = "tl_retry_reply"  # on the report of an agent's failed thread reply
