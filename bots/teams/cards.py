"""Adaptive Card builders for Teams: the ticket card, thread posts, reply notices, draft cards.

All of Teams' layout lives here (the meaning is in bots/surface/views.py); listeners and jobs
never write card JSON. Buttons are `Action.Execute` (answered synchronously with the new card).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bots.surface import held_views as views_held
from bots.surface import views
from bots.teams.ids import CARD_CONTENT_TYPE, Input, Verb
from core.tickets.models import Priority

Card = dict[str, Any]
ORIGINAL_CHUNK = 4_000  # characters per TextBlock in the original's dialog
ORIGINAL_MAX = 20_000  # escaped and JSON-encoded (at worst 3 bytes a character): under Teams' ~80 KB
MAX_LISTED_FILES = 20  # a mail with hundreds of attachments must not push a post past Teams' 80 KB

# CommonMark's markup characters (and `{`: Teams' {{DATE(...)}} functions, `&`: entities).
_MARKUP = frozenset("\\`*_~#>[]()|!+-={}<&")
_INDENT = re.compile(r"(?m)^[ \t]+")
_ORDERED = re.compile(r"(?m)^(\u00a0*[0-9]{1,9})([.)])")

_LABEL = {
    views.CardAction.ASSIGN_ME: "Assign to me",
    views.CardAction.RESOLVE: "Resolve",
    views.CardAction.REOPEN: "Reopen",
}
_VERB = {
    views.CardAction.ASSIGN_ME: Verb.ASSIGN_ME,
    views.CardAction.RESOLVE: Verb.RESOLVE,
    views.CardAction.REOPEN: Verb.REOPEN,
}


def outside(value: str) -> str:
    """Text from outside (customers, senders) shown as itself: Teams renders markdown in card text,
    so every character that could start markup is backslash-escaped (a link can no longer hide
    its target behind other words, `**`/`#`/`>`/lists/code do nothing), ordered-list digits and
    leading indentation (which would make a code block) are neutralised. Linear in the length."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = "".join("\\" + ch if ch in _MARKUP else ch for ch in value)
    value = _INDENT.sub(lambda m: "\u00a0" * len(m.group()), value)
    return _ORDERED.sub(r"\1\\\2", value)


def text(value: str, *, weight: str | None = None, size: str | None = None, subtle: bool = False) -> Card:
    block: Card = {"type": "TextBlock", "text": value, "wrap": True}
    if weight:
        block["weight"] = weight
    if size:
        block["size"] = size
    if subtle:
        block["isSubtle"] = True
    return block


def facts(pairs: list[tuple[str, str]]) -> Card:
    return {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in pairs]}


def execute(title: str, verb: Verb, data: dict[str, str]) -> Card:
    return {"type": "Action.Execute", "title": title, "verb": verb.value, "data": data}


def card(body: list[Card], actions: list[Card] | None = None) -> Card:
    content: Card = {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                     "version": "1.5", "body": body}
    if actions:
        content["actions"] = actions
    return content


def message(content: Card, *, summary: str) -> dict[str, Any]:
    """A message activity carrying one card; `summary` is what notifications and search show."""
    return {"type": "message", "summary": summary, "text": "",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": content}]}


def marker(key: str) -> str:
    """A post's own id in its card (hidden), so a retry can find the post if it exists already."""
    return "tl-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def marked(activity: dict[str, Any], key: str) -> dict[str, Any]:
    """The activity with `marker(key)` as an invisible block of its card (the Bot Connector has no
    client key of its own)."""
    content = activity["attachments"][0]["content"]
    hidden = {"type": "TextBlock", "id": marker(key), "text": " ", "isVisible": False}
    return {**activity, "attachments": [{**activity["attachments"][0],
                                         "content": {**content, "body": [*content["body"], hidden]}}]}


def text_message(line: str) -> dict[str, Any]:
    """A plain reply (answers to commands)."""
    return {"type": "message", "text": line, "textFormat": "plain"}


# ---- the ticket card ----

def card_text(c: views.TicketCard) -> str:
    return f"#{c.number} {c.subject} — {c.status.value}, {c.priority.value}"


def ticket_card(c: views.TicketCard) -> Card:
    ticket = str(c.ticket_id)
    body = [
        text(outside(f"#{c.number} {c.subject}"), weight="Bolder", size="Medium"),
        facts([("Customer", outside(c.customer)), ("Via", c.via), ("Status", c.status.value),
               ("Priority", c.priority.value), ("Assignee", c.assignee or "unassigned"), ("Age", c.age)]),
    ]
    if c.unverified_sender:
        body.append(text("⚠️ Unverified sender: this mail failed DMARC, the From address may be forged.",
                         weight="Bolder"))
    actions: list[Card] = []
    for action in c.actions:
        if action in _VERB:
            actions.append(execute(_LABEL[action], _VERB[action], {"ticket_id": ticket}))
        elif action is views.CardAction.PRIORITY:
            actions.append(_priority_picker(ticket, c.priority))
        elif action is views.CardAction.REPLY:
            actions.append(_reply_box(ticket))
    return card(body, actions)


def _priority_picker(ticket: str, current: Priority) -> Card:
    choices = [{"title": p.value, "value": p.value} for p in Priority]
    return {"type": "Action.ShowCard", "title": "Priority", "card": card(
        [{"type": "Input.ChoiceSet", "id": Input.PRIORITY.value, "value": current.value, "choices": choices}],
        [execute("Set priority", Verb.PRIORITY, {"ticket_id": ticket})])}


def _reply_box(ticket: str) -> Card:
    return {"type": "Action.ShowCard", "title": "Reply to customer", "card": card(
        [{"type": "Input.Text", "id": Input.REPLY.value, "isMultiline": True, "placeholder": "Your reply"}],
        [execute("Send", Verb.REPLY, {"ticket_id": ticket})])}


# ---- thread posts, notices, failures ----

def post_card(p: views.ThreadPost) -> Card:
    body = [text(f"**{outside(p.byline)}** ({p.direction.value})", subtle=True), text(outside(p.text))]
    if p.unverified_sender:
        body.append(text("⚠️ This mail failed DMARC: the sender may be forged.", subtle=True))
    if p.truncated:
        body.append(text("(shortened here; the whole message is in the ticket)", subtle=True))
    shown = p.attachments[:MAX_LISTED_FILES]
    # Each file links to its signed download on our API (core/attachments/links.py); names are outside text.
    files = ([f"[{outside(name)}]({url})" for name, url in zip(shown, p.links, strict=False)] if p.links
             else [outside(name) for name in shown])
    if len(p.attachments) > MAX_LISTED_FILES:
        files.append(f"and {len(p.attachments) - MAX_LISTED_FILES} more")
    if files:
        body.append(text("📎 " + ", ".join(files), subtle=True))
    if p.truncated:
        return card(body, [view_original_button(str(p.message_id))])
    return card(body)


def view_original_button(message_id: str) -> Card:
    """Opens a dialog (`task/fetch`, Teams' modal) with the whole message as received."""
    return {"type": "Action.Submit", "title": "View the full original",
            "data": {"msteams": {"type": "task/fetch"}, "verb": Verb.VIEW_ORIGINAL.value, "message_id": message_id}}


def original_dialog(*, title: str, text: str) -> dict[str, Any]:
    """The `task/fetch` answer: a dialog card with the message, split in blocks under Teams' limits."""
    chunks = [text[i:i + ORIGINAL_CHUNK] for i in range(0, min(len(text), ORIGINAL_MAX), ORIGINAL_CHUNK)] or [""]
    body = [_plain(chunk) for chunk in chunks]
    if len(text) > ORIGINAL_MAX:
        body.append(_plain("(the rest is in the ticket: it is longer than a Teams dialog holds)"))
    return {"task": {"type": "continue", "value": {
        "title": outside(title[:200]), "width": "large", "height": "large",
        "card": {"contentType": CARD_CONTENT_TYPE, "content": card(body)}}}}


def _plain(value: str) -> Card:
    return text(outside(value))


def post_summary(p: views.ThreadPost) -> str:  # plain text (notifications): no markdown to defuse
    return f"{p.byline}: {views.clip(p.text, 120)}"


def notice_card(n: views.ReplyNotice) -> Card:
    actions = []
    if n.can_undo:
        data = {"message_id": str(n.message_id)}
        actions = [execute("Undo", Verb.UNDO, data), execute("Make internal", Verb.MAKE_INTERNAL, data)]
    return card([text(n.headline)], actions)


def failure_card(line: str, *, retry_job: int | None = None) -> Card:
    """A line the agent must see; with a Retry button when their message failed for a reason
    other than a refusal (the stored activity is handled again)."""
    if retry_job is None:
        return card([text(line, weight="Bolder")])
    return card([text(line, weight="Bolder"), text("Retry, or write it again.", subtle=True)],
                [execute("Retry", Verb.RETRY_REPLY, {"job": str(retry_job)})])


# ---- the knowledge bot's draft ----

def draft_card(d: views.DraftCard) -> Card:
    body = [text(d.headline, weight="Bolder")]
    if d.state not in ("no_answer",):
        body.append(text(d.text))
    if d.sources:
        body.append(text("Sources: " + "; ".join(f"[{s.title}]({s.where})" if s.where.startswith("http")
                                                 else f"{s.title} ({s.where})" for s in d.sources), subtle=True))
    body.append(text(f"confidence {d.confidence_pct}%", subtle=True))
    data = {"draft_id": str(d.draft_id)}
    actions: list[Card] = []
    if d.can_send:
        actions.append(execute("Send", Verb.SEND_DRAFT, data))
        actions.append({"type": "Action.ShowCard", "title": "Edit", "card": card(
            [{"type": "Input.Text", "id": Input.DRAFT.value, "isMultiline": True, "value": d.text}],
            [execute("Send edited", Verb.EDIT_DRAFT, data)])})
        actions.append(execute("Discard", Verb.DISCARD_DRAFT, data))
    if d.can_regenerate:
        actions.append(execute("Regenerate", Verb.REGENERATE_DRAFT, data))
    return card(body, actions)


# ---- held mail ----

def held_header_card(header: views_held.HeldDigestHeader) -> Card:
    return card([text(f"📥 {header.text}")])


def held_item_card(item: views_held.HeldItem) -> Card:
    body = [text(f"**{outside(views.clip(item.sender, 300))}**"), text(outside(views.clip(item.subject, 500))),
            text(outside(f"Held because: {views.clip(item.reason, 1500)}"), subtle=True)]
    if item.released_by:
        body.append(text(f"✅ Released by {views.clip(item.released_by, 200)}: it is processed as a normal mail."))
        return card(body)
    return card(body, [execute("Release", Verb.RELEASE_HELD, {"raw_id": str(item.raw_id)})])


def invoke_card(content: Card) -> dict[str, Any]:
    """The synchronous answer to an `adaptiveCard/action` invoke: the card that replaces the old one."""
    return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": content}


def invoke_message(line: str) -> dict[str, Any]:
    """The answer to an invoke that changes nothing on the card: Teams shows the line to the clicker."""
    return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": line}
