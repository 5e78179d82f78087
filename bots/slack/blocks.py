"""Block Kit for every Slack message and modal Threadline posts (built from surface views).

Every string that came from outside (customers, remote mail servers, file names, the knowledge
base) goes through bots.slack.text: escaped for mrkdwn and cut to the limit of the field it lands in,
so no subject, attachment list or delivery error can make a Slack call fail and block a thread.
"""

from __future__ import annotations

import json

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bots.slack import text as st
from bots.slack.ids import ActionId, CallbackId
from bots.surface.views import CardAction, DraftCard, DraftSource, ReplyNotice, ThreadPost, TicketCard
from core.tickets.models import DeliveryState, Direction, Priority

_STATUS_EMOJI = {"new": ":new:", "open": ":large_green_circle:", "pending": ":hourglass:",
                 "resolved": ":white_check_mark:", "closed": ":lock:"}
_PRIORITY_EMOJI = {"low": ":arrow_down:", "normal": ":black_small_square:", "high": ":arrow_up:",
                   "urgent": ":rotating_light:"}


NAME = 200  # a name or address inside a line: long enough for any real one, short enough to read


def _with(prefix: str, outside: str, limit: int, suffix: str = "", *, placeholder: str = "") -> str:
    """`prefix` + `outside` fitted to what is left of `limit` + `suffix` (prefix and suffix are ours)."""
    return prefix + st.fit(outside, limit - st.units(prefix + suffix), placeholder=placeholder).text + suffix


def card_text(card: TicketCard) -> str:
    return (f"#{card.number} {st.fit(card.subject, st.MESSAGE_TEXT // 2).text} — "
            f"{st.fit(card.customer, NAME).text} ({card.status.value})")


UNVERIFIED = (":warning: *Unverified sender*: this mail failed DMARC, so the From address may be forged. "
              "Check before you share anything with it.")


def card_blocks(card: TicketCard) -> list[Block]:
    value = str(card.ticket_id)
    assignee = _with("*Assignee*\n", card.assignee, st.SECTION_FIELD) if card.assignee else "*Assignee*\n_unassigned_"
    fields = [
        MarkdownTextObject(text=_with("*Customer*\n", card.customer, st.SECTION_FIELD, placeholder="unknown")),
        MarkdownTextObject(text=f"*Via*\n{card.via}"),
        MarkdownTextObject(text=f"*Status*\n{_STATUS_EMOJI.get(card.status.value, '')} {card.status.value}"),
        MarkdownTextObject(text=f"*Priority*\n{_PRIORITY_EMOJI.get(card.priority.value, '')} {card.priority.value}"),
        MarkdownTextObject(text=assignee),
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
        SectionBlock(text=MarkdownTextObject(text=_with(f"*#{card.number} ", card.subject, st.SECTION_TEXT, "*",
                                                        placeholder="(no subject)")), fields=fields),
        *([ContextBlock(elements=[MarkdownTextObject(text=UNVERIFIED)])] if card.unverified_sender else []),
        ActionsBlock(block_id="ticket_actions", elements=elements),
    ]


def post_text(post: ThreadPost) -> str:
    byline = st.fit(post.byline, NAME).text
    return _with(f"{byline}: ", post.text, st.MESSAGE_TEXT, placeholder="(no text)")


def post_blocks(post: ThreadPost, *, with_original: bool) -> list[Block]:
    """The message, its author and attachments; "View the full original" when any of it was cut."""
    who = {Direction.INBOUND: ":envelope_with_arrow:", Direction.OUTBOUND: ":outbox_tray:",
           Direction.NOTE: ":memo:", Direction.BOT: ":robot_face:"}[post.direction]
    body = st.fit(post.text, st.SECTION_TEXT, placeholder="(no text)")
    blocks: list[Block] = [
        ContextBlock(elements=[MarkdownTextObject(text=f"{who} *{st.fit(post.byline, NAME, placeholder='?').text}*")]),
        SectionBlock(text=PlainTextObject(text=body.text, emoji=False)),
    ]
    if post.unverified_sender:
        blocks.insert(1, ContextBlock(elements=[MarkdownTextObject(text=UNVERIFIED)]))
    if post.attachments:
        prefix = ":paperclip: "
        if post.links:  # signed download links (served by our API); a name that does not fit is left out
            linked = [st.link(url, name) or st.escape(name)
                      for name, url in zip(post.attachments, post.links, strict=True)]
            names = st.fit_list(linked, st.CONTEXT_TEXT - len(prefix), escaped=True)
        else:
            names = st.fit_list(post.attachments, st.CONTEXT_TEXT - len(prefix), item_limit=NAME)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=prefix + names.text)]))
    if with_original or body.cut:
        blocks.append(ActionsBlock(elements=[ButtonElement(
            text="View the full original", action_id=ActionId.VIEW_ORIGINAL, value=str(post.message_id))]))
    return blocks


ORIGINAL_CHUNKS = 40  # 40 sections of up to 3,000 characters: ~120 KB, well inside a modal's 100 blocks


def original_modal(*, title: str, text: str) -> View:
    """The whole message as received (quotes and signature included), in sections of up to 3,000 characters."""
    chunks, cut = st.chunks(text, st.SECTION_TEXT, most=ORIGINAL_CHUNKS)
    blocks: list[Block] = [SectionBlock(text=PlainTextObject(text=c, emoji=False)) for c in chunks if c.strip()]
    if not blocks:
        blocks = [SectionBlock(text=PlainTextObject(text="(empty)", emoji=False))]
    if cut:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"{st.ELLIPSIS} _cut here: the rest is longer than Slack can show in one window._")]))
    return View(type="modal", title=PlainTextObject(text=st.fit(title, st.MODAL_TITLE, placeholder="Original").text),
                close=PlainTextObject(text="Close"), blocks=blocks)


def notice_blocks(notice: ReplyNotice) -> list[Block]:
    icon = {DeliveryState.PENDING: ":hourglass_flowing_sand:", DeliveryState.SENT: ":white_check_mark:",
            DeliveryState.FAILED: ":x:", DeliveryState.CANCELLED: ":leftwards_arrow_with_hook:"}.get(notice.state, "")
    headline = _with(f"{icon} ", notice.headline, st.SECTION_TEXT)
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=headline))]
    if notice.can_undo:
        value = str(notice.message_id)
        blocks.append(ActionsBlock(block_id="reply_actions", elements=[
            ButtonElement(text="Undo", action_id=ActionId.UNDO, value=value, style="danger"),
            ButtonElement(text="Make internal", action_id=ActionId.MAKE_INTERNAL, value=value),
        ]))
    return blocks


def notice_text(notice: ReplyNotice) -> str:
    return st.fit(notice.headline, st.MESSAGE_TEXT).text


def failure_text(line: str) -> str:
    """The thread post for an undelivered reply (`line` holds the remote server's own words)."""
    return _with(":x: ", line, st.MESSAGE_TEXT)


def reply_failed_blocks(*, reason: str, value: str) -> list[Block]:
    """Ephemeral, to the agent whose thread reply could not be handled (issue 10)."""
    return [
        SectionBlock(text=MarkdownTextObject(text=_with(":x: Your reply was not handled: ", reason, 2900,
                                                        " Retry, or write it again."))),
        ActionsBlock(block_id="reply_failed", elements=[
            ButtonElement(text="Retry", action_id=ActionId.RETRY_REPLY, value=value, style="primary")]),
    ]


def reply_modal(*, ticket_id: str, number: int, recipient: str) -> View:
    return View(
        type="modal",
        callback_id=CallbackId.REPLY_MODAL,
        private_metadata=json.dumps({"ticket_id": ticket_id}),
        title=PlainTextObject(text=f"Reply on #{number}"[:24]),
        submit=PlainTextObject(text="Send"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            ContextBlock(elements=[MarkdownTextObject(text=_with("To: *", recipient, st.CONTEXT_TEXT, "*",
                                                                 placeholder="the customer"))]),
            InputBlock(block_id="reply", label=PlainTextObject(text="Message"),
                       element=PlainTextInputElement(action_id="text", multiline=True)),
        ],
    )


def draft_text(card: DraftCard) -> str:
    return f"{st.fit(card.headline, NAME).text}: {st.fit(card.text, 200).text}"


def _source_line(source: DraftSource) -> str:
    title = st.fit(source.title, NAME, placeholder="source").text
    where = st.link(source.where, "link") if source.where.startswith("http") else None
    if where:
        return f"• {title} — {where}"
    return f"• {title}" + (f" — `{st.fit(source.where, NAME).text}`" if source.where else "")


def draft_blocks(card: DraftCard) -> list[Block]:
    """Draft card: text, sources, confidence, and Send / Edit / Discard (or Regenerate)."""
    value = str(card.draft_id)
    blocks_: list[Block] = [
        ContextBlock(elements=[MarkdownTextObject(text=_with(
            ":robot_face: *", card.headline, st.CONTEXT_TEXT, f"* · confidence {card.confidence_pct}%"))]),
    ]
    if card.state != "no_answer":
        answer = st.fit(card.text, st.SECTION_TEXT, placeholder="(empty)")
        blocks_.append(SectionBlock(text=PlainTextObject(text=answer.text, emoji=False)))
        if answer.cut or card.truncated:
            blocks_.append(ContextBlock(elements=[MarkdownTextObject(
                text="_Shortened here; Send sends the whole answer._" if card.can_send else "_Shortened here._")]))
    if card.sources:
        label = f"*{'Closest articles' if card.state == 'no_answer' else 'Sources'}*\n"
        lines = st.fit_list([_source_line(s) for s in card.sources], st.CONTEXT_TEXT - len(label), sep="\n",
                            escaped=True)
        blocks_.append(ContextBlock(elements=[MarkdownTextObject(text=label + lines.text)]))
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
                           element=PlainTextInputElement(action_id="text", multiline=True,
                                                         initial_value=st.head(text, st.INPUT_VALUE)))],
    )
