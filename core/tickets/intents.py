"""What an agent's words mean, decided once for every surface: Slack, Teams and mail (pure).

`bots/surface/intents.py` re-exports the thread rules; inbound (agents by email) imports them
from here, since inbound and bots meet only in core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from core.tenancy.models import ReplyMode
from core.tickets.models import Priority, TicketStatus

# "note:" and "//" make an internal note at once (architecture §6); case and spacing tolerant.
_NOTE = re.compile(r"^\s*(note\s*:|//)\s*", re.I)


class ThreadIntent(StrEnum):
    NOTE = "note"  # internal at once
    PUBLIC_REPLY = "public_reply"  # to the customer after the undo window
    INTERNAL = "internal"  # explicit mode: thread text stays internal


@dataclass(frozen=True)
class ThreadMessage:
    intent: ThreadIntent
    text: str


def classify_thread_text(text: str, *, reply_mode: ReplyMode) -> ThreadMessage:
    match = _NOTE.match(text)
    if match:
        return ThreadMessage(ThreadIntent.NOTE, text[match.end():].strip())
    if reply_mode is ReplyMode.EXPLICIT:
        return ThreadMessage(ThreadIntent.INTERNAL, text.strip())
    return ThreadMessage(ThreadIntent.PUBLIC_REPLY, text.strip())


# ---- commands at the top of an agent's mail (issue 16) ----


class MailCommandKind(StrEnum):
    STATUS = "status"  # #resolve, #pending, #open, #close
    ASSIGN_ME = "assign-me"
    PRIORITY = "priority"
    SEND_DRAFT = "send-draft"  # the pending draft, as it is
    REPLY = "reply"  # explicit mode: this mail's text goes to the customer


@dataclass(frozen=True)
class MailCommand:
    kind: MailCommandKind
    status: TicketStatus | None = None
    priority: Priority | None = None


@dataclass(frozen=True)
class AgentMail:
    commands: tuple[MailCommand, ...]
    text: str  # what is left after the command lines


MAIL_HELP = (
    "Reply above this line to answer the customer; start with note: or // for an internal note. "
    "Commands on their own lines at the top: #resolve #pending #open #assign me #priority high "
    "#send-draft #reply"
)
_STATUS_WORDS = {"resolve": TicketStatus.RESOLVED, "pending": TicketStatus.PENDING, "open": TicketStatus.OPEN,
                 "reopen": TicketStatus.OPEN, "close": TicketStatus.CLOSED}
MAX_COMMAND_LINES = 20  # a bound on the work, whatever the mail holds
_MAX_COMMAND_LINE = 80


def _command(line: str) -> MailCommand | None:
    """One line → a command, or None (then the line is text). Split only on white space: linear."""
    if not line.startswith("#") or len(line) > _MAX_COMMAND_LINE:
        return None
    words = line[1:].lower().split()
    if not words:
        return None
    verb, args = words[0], words[1:]
    if verb in _STATUS_WORDS and not args:
        return MailCommand(MailCommandKind.STATUS, status=_STATUS_WORDS[verb])
    if verb == "assign" and args == ["me"]:
        return MailCommand(MailCommandKind.ASSIGN_ME)
    if verb == "priority" and len(args) == 1 and args[0] in Priority._value2member_map_:
        return MailCommand(MailCommandKind.PRIORITY, priority=Priority(args[0]))
    if verb == "send-draft" and not args:
        return MailCommand(MailCommandKind.SEND_DRAFT)
    if verb == "reply" and not args:
        return MailCommand(MailCommandKind.REPLY)
    return None


def parse_agent_mail(text: str) -> AgentMail:
    """Commands on their own lines at the top (blank lines between them allowed), then text.

    The first line that is not a known command ends the commands: an unknown `#word` or a
    `#priority` without a known value is text, so a reply that starts with "#1 tip" reaches the
    customer as written. Never raises.
    """
    commands: list[MailCommand] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n", MAX_COMMAND_LINES + 1)
    consumed = 0
    for line in lines[:MAX_COMMAND_LINES]:
        stripped = line.strip()
        if not stripped:
            consumed += 1
            continue
        command = _command(stripped)
        if command is None:
            break
        commands.append(command)
        consumed += 1
    rest = "\n".join(lines[consumed:]) if consumed < len(lines) else ""
    return AgentMail(tuple(commands), rest.strip())
