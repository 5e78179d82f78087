"""Block Kit for every Slack message and modal Threadline posts (built from surface views)."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
    InputBlock,
)
from slack_sdk.models.views import View

from bots.slack.ids import ActionId, CallbackId
from bots.surface.views import CardAction, DraftCard, ReplyNotice, ThreadPost, TicketCard
from core.tickets.models import DeliveryState, Direction, Priority

_STATUS_EMOJI = {"new": ":new:", "open": ":large_green_circle:", "pending": ":hourglass:",
                 "resolved": ":white_check_mark:", "closed": ":lock:"}
_PRIORITY_EMOJI = {"low": ":arrow_down:", "normal": ":black_small_square:", "high": ":arrow_up:",
                   "urgent": ":rotating_light:"}


def escape(text: str) -> str:
    """Slack mrkdwn control characters (customers must not be able to @channel or fake links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def card_text(card: TicketCard) -> str:
    return f"#{card.number} {card.subject} — {card.customer} ({card.status.value})"


def card_blocks(card: TicketCard) -> list[Block]:
    value = str(card.ticket_id)
    fields = [
        MarkdownTextObject(text=f"*Customer*\n{escape(card.customer)}"),
        MarkdownTextObject(text=f"*Via*\n{card.origin.value}"),
        MarkdownTextObject(text=f"*Status*\n{_STATUS_EMOJI.get(card.status.value, '')} {card.status.value}"),
        MarkdownTextObject(text=f"*Priority*\n{_PRIORITY_EMOJI.get(card.priority.value, '')} {card.priority.value}"),
        MarkdownTextObject(text=f"*Assignee*\n{escape(card.assignee) if card.assignee else '_unassigned_'}"),
        MarkdownTextObject(text=f"*Age*\n{card.age}"),
    ]
    elements: list[ButtonElement | StaticSelectElement] = []
    for action in card.actions:
        if action is CardAction.ASSIGN_ME:
            elements.append(ButtonElement(text="Assign to me", action_id=ActionId.ASSIGN_ME, value=value))
        elif action is CardAction.PRIORITY:
            elements.append(StaticSelectElement(
                placeholder="Priority", action_id=ActionId.PRIORITY,
                options=[Option(text=p.value.title(), value=f"{value}|{p.value}") for p in Priority],
                initial_option=Option(text=card.priority.value.title(), value=f"{value}|{card.priority.value}"),
            ))
        elif action is CardAction.RESOLVE:
            elements.append(ButtonElement(text="Resolve", action_id=ActionId.RESOLVE, value=value, style="primary"))
        elif action is CardAction.REOPEN:
            elements.append(ButtonElement(text="Reopen", action_id=ActionId.REOPEN, value=value))
        elif action is CardAction.REPLY:
            elements.append(ButtonElement(text="Reply to customer", action_id=ActionId.REPLY, value=value))
    return [
        SectionBlock(text=MarkdownTextObject(text=f"*#{card.number} {escape(card.subject)}*"), fields=fields),
        ActionsBlock(block_id="ticket_actions", elements=elements),
    ]


def post_text(post: ThreadPost) -> str:
    return f"{post.author}: {post.text}"


def post_blocks(post: ThreadPost, *, with_original: bool) -> list[Block]:
    who = {Direction.INBOUND: ":envelope_with_arrow:", Direction.OUTBOUND: ":outbox_tray:",
           Direction.NOTE: ":memo:", Direction.BOT: ":robot_face:"}[post.direction]
    blocks: list[Block] = [
        ContextBlock(elements=[MarkdownTextObject(text=f"{who} *{escape(post.author)}*")]),
        SectionBlock(text=PlainTextObject(text=post.text, emoji=False)),
    ]
    if post.attachments:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=":paperclip: " + ", ".join(escape(a) for a in post.attachments))]))
    if with_original:
        blocks.append(ActionsBlock(elements=[ButtonElement(
            text="View the full original", action_id=ActionId.VIEW_ORIGINAL, value=str(post.message_id))]))
    return blocks


def original_modal(*, title: str, text: str) -> View:
    """The whole message as received (quotes and signature included), in 2,900-character blocks."""
    chunks = [text[i:i + 2900] for i in range(0, min(len(text), 2900 * 40), 2900)] or ["(empty)"]
    return View(type="modal", title=PlainTextObject(text=title[:24]), close=PlainTextObject(text="Close"),
                blocks=[SectionBlock(text=PlainTextObject(text=c, emoji=False)) for c in chunks])


def notice_blocks(notice: ReplyNotice) -> list[Block]:
    icon = {DeliveryState.PENDING: ":hourglass_flowing_sand:", DeliveryState.SENT: ":white_check_mark:",
            DeliveryState.FAILED: ":x:", DeliveryState.CANCELLED: ":leftwards_arrow_with_hook:"}.get(notice.state, "")
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"{icon} {escape(notice.headline)}"))]
    if notice.can_undo:
        value = str(notice.message_id)
        blocks.append(ActionsBlock(block_id="reply_actions", elements=[
            ButtonElement(text="Undo", action_id=ActionId.UNDO, value=value, style="danger"),
            ButtonElement(text="Make internal", action_id=ActionId.MAKE_INTERNAL, value=value),
        ]))
    return blocks


def reply_modal(*, ticket_id: str, number: int, recipient: str) -> View:
    return View(
        type="modal",
        callback_id=CallbackId.REPLY_MODAL,
        private_metadata=json.dumps({"ticket_id": ticket_id}),
        title=PlainTextObject(text=f"Reply on #{number}"[:24]),
        submit=PlainTextObject(text="Send"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            ContextBlock(elements=[MarkdownTextObject(text=f"To: *{escape(recipient)}*")]),
            InputBlock(block_id="reply", label=PlainTextObject(text="Message"),
                       element=PlainTextInputElement(action_id="text", multiline=True)),
        ],
    )


def draft_text(card: DraftCard) -> str:
    return f"{card.headline}: {card.text[:200]}"


def draft_blocks(card: DraftCard) -> list[Block]:
    """Draft card: text, sources, confidence, and Send / Edit / Discard (or Regenerate)."""
    value = str(card.draft_id)
    blocks_: list[Block] = [
        ContextBlock(elements=[MarkdownTextObject(
            text=f":robot_face: *{escape(card.headline)}* · confidence {card.confidence_pct}%")]),
    ]
    if card.state != "no_answer":
        blocks_.append(SectionBlock(text=PlainTextObject(text=card.text or "(empty)", emoji=False)))
    if card.sources:
        label = "Closest articles" if card.state == "no_answer" else "Sources"
        lines = [f"• {escape(s.title)}" + (f" — <{s.where}|link>" if s.where.startswith("http") else
                                             (f" — `{escape(s.where)}`" if s.where else "")) for s in card.sources]
        blocks_.append(ContextBlock(elements=[MarkdownTextObject(text=f"*{label}*\n" + "\n".join(lines))]))
    buttons: list[ButtonElement] = []
    if card.can_send:
        buttons += [
            ButtonElement(text="Send", action_id=ActionId.SEND_DRAFT, value=value, style="primary"),
            ButtonElement(text="Edit", action_id=ActionId.EDIT_DRAFT, value=value),
            ButtonElement(text="Discard", action_id=ActionId.DISCARD_DRAFT, value=value),
        ]
    if card.can_regenerate:
        buttons.append(ButtonElement(text="Regenerate", action_id=ActionId.REGENERATE_DRAFT, value=value))
    if buttons:
        blocks_.append(ActionsBlock(block_id="draft_actions", elements=buttons))
    return blocks_


def edit_draft_modal(*, draft_id: str, text: str) -> View:
    return View(
        type="modal", callback_id=CallbackId.EDIT_DRAFT_MODAL, private_metadata=json.dumps({"draft_id": draft_id}),
        title=PlainTextObject(text="Edit the answer"), submit=PlainTextObject(text="Send"),
        close=PlainTextObject(text="Cancel"),
        blocks=[InputBlock(block_id="reply", label=PlainTextObject(text="Answer"),
                           element=PlainTextInputElement(action_id="text", multiline=True, initial_value=text[:3000]))],
    )
