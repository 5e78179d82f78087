"""An incoming Teams activity, parsed once at the edge into a frozen value (schema: the Agents SDK's
`microsoft-agents-activity`), with the bot's @mention stripped from the text."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from microsoft_agents.activity import Activity

MAX_TEXT = 40_000  # Teams caps a message near 28 KB of text; anything longer is not from Teams
# Linear and bounded: no nesting, at most 256 characters between the tags.
_MENTION = re.compile(r"<at>([^<]{0,256})</at>( ?)")
_TAGS = re.compile(r"<[^<>]{0,512}>")


@dataclass(frozen=True)
class TeamsUser:
    id: str  # the Teams user id (29:...), what the connector's members API takes
    aad_object_id: str | None
    name: str


@dataclass(frozen=True)
class Incoming:
    id: str
    type: str
    name: str | None  # invokes: "adaptiveCard/action"
    service_url: str
    conversation_id: str  # a channel thread: "{channel id};messageid={root id}"
    channel_id: str | None  # channelData.channel.id
    aad_tenant: str | None  # channelData.tenant.id
    sender: TeamsUser
    text: str  # mention-stripped plain text
    reply_to_id: str | None
    value: dict[str, Any]
    from_bot: bool
    mentions_bot: bool  # the bot was @mentioned: a command outside ticket threads
    mentioned: tuple[TeamsUser, ...] = ()  # other people @mentioned, in order of the `@N` tokens
    command_text: str = ""  # `text` with each other person's mention as `@N` (an index into `mentioned`)


def strip_mentions(text: str, bot_names: set[str]) -> str:
    """The bot's own mention goes; other people's stay readable as @Name. Markup goes too."""
    text = text[:MAX_TEXT]
    text = _MENTION.sub(lambda m: "" if m.group(1).strip() in bot_names else f"@{m.group(1)}{m.group(2)}", text)
    text = re.sub(r"<br\s*/?>|</p>", "\n", text)
    return html.unescape(_TAGS.sub("", text)).strip()


def command_text(text: str, bot_names: set[str], people: list[str]) -> str:
    """The text of a command: the bot's mention goes, each other mention becomes one word `@N`
    naming the N-th mentioned person (display names have spaces; a command needs one token)."""
    used: set[int] = set()

    def token(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        if name in bot_names:
            return ""
        index = next((i for i, p in enumerate(people) if p == name and i not in used), None)
        if index is None:
            return f"@{name}{m.group(2)}"
        used.add(index)
        return f"@{index}{m.group(2)}"

    text = _MENTION.sub(token, text[:MAX_TEXT])
    return html.unescape(_TAGS.sub("", re.sub(r"<br\s*/?>|</p>", "\n", text))).strip()


def parse(body: dict[str, Any]) -> Incoming:
    a = Activity.model_validate(body)
    sender = a.from_property
    data: dict[str, Any] = a.channel_data if isinstance(a.channel_data, dict) else {}
    bot_names = {m.mentioned.name for m in a.get_mentions() if a.recipient is not None and m.mentioned is not None
                 and m.mentioned.id == a.recipient.id and m.mentioned.name}
    if a.recipient is not None and a.recipient.name:
        bot_names.add(a.recipient.name)
    others = [m.mentioned for m in a.get_mentions() if m.mentioned is not None and m.mentioned.id
              and (a.recipient is None or m.mentioned.id != a.recipient.id)]
    mentioned = tuple(TeamsUser(m.id, m.aad_object_id, m.name or "Teams user") for m in others)
    return Incoming(
        id=a.id or "", type=str(a.type), name=a.name, service_url=a.service_url or "",
        conversation_id=a.conversation.id if a.conversation else "",
        channel_id=(data.get("channel") or {}).get("id"), aad_tenant=(data.get("tenant") or {}).get("id"),
        sender=TeamsUser(sender.id if sender else "", sender.aad_object_id if sender else None,
                         (sender.name if sender else None) or "Teams user"),
        text=strip_mentions(a.text or "", bot_names),
        reply_to_id=a.reply_to_id,
        value=a.value if isinstance(a.value, dict) else {},
        from_bot=bool(sender and (sender.id.startswith("28:") or (sender.role or "") == "bot")),
        mentions_bot=bool(a.recipient is not None and any(
            m.mentioned is not None and m.mentioned.id == a.recipient.id for m in a.get_mentions())),
        mentioned=mentioned,
        command_text=command_text(a.text or "", bot_names, [u.name for u in mentioned]),
    )


def thread_root(conversation_id: str) -> str | None:
    """The root activity id of a channel thread conversation, or None outside a thread."""
    _channel, sep, root = conversation_id.partition(";messageid=")
    return root if sep and root else None
