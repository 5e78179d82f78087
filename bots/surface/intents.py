"""What an agent's words mean, decided once for every surface (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bots.surface.vocabulary import Vocabulary

# The thread rules live in core so that agents by email (inbound) mean the same by the same words.
from core.tickets.intents import ThreadIntent as ThreadIntent
from core.tickets.intents import ThreadMessage as ThreadMessage
from core.tickets.intents import classify_thread_text as classify_thread_text
from core.tickets.models import Priority, TicketStatus


class CommandKind(StrEnum):
    HELP = "help"
    MINE = "mine"
    OPEN = "open"
    ASSIGN = "assign"
    STATUS = "status"
    PRIORITY = "priority"
    DRAFT = "draft"
    INVALID = "invalid"


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    ticket_number: int | None = None
    user: str | None = None  # "me", or a surface user id the adapter resolved from a mention
    status: TicketStatus | None = None
    priority: Priority | None = None
    error: str | None = None


def help_text(vocabulary: Vocabulary) -> str:
    c, someone = vocabulary.command, vocabulary.mention_example
    return (
        f"{c} mine — your open tickets\n"
        f"{c} open — unassigned open tickets\n"
        f"{c} assign 123 {someone} — assign ticket #123 (or `me`)\n"
        f"{c} status 123 open|pending|resolved|closed\n"
        f"{c} priority 123 low|normal|high|urgent\n"
        f"{c} draft 123 — ask the knowledge bot for a new draft\n"
        "In a ticket thread: write to reply to the customer; start with `note:` or `//` for an internal note."
    )


def no_mentions(token: str) -> str | None:
    return None


def _number(token: str) -> int | None:
    token = token.lstrip("#")
    if token.upper().startswith("TL-"):
        token = token[3:]
    return int(token) if token.isdigit() else None


def parse_command(
    text: str, *, vocabulary: Vocabulary, mention: Callable[[str], str | None] = no_mentions,
) -> Command:
    """`text` after the command word. `mention` is the adapter's: the user id a word names when
    the word is a mention in that surface's markup (Slack `<@U123>`), else None."""
    c = vocabulary.command
    words = text.split()
    if not words or words[0].lower() in ("help", "?"):
        return Command(CommandKind.HELP)
    verb, args = words[0].lower(), words[1:]
    if verb in ("mine", "open"):
        return Command(CommandKind(verb))
    if verb in ("assign", "status", "priority", "draft"):
        number = _number(args[0]) if args else None
        if number is None:
            return Command(CommandKind.INVALID, error=f"`{verb}` needs a ticket number, e.g. `{c} {verb} 123`")
        if verb == "draft":
            return Command(CommandKind.DRAFT, number)
        if len(args) < 2:
            return Command(CommandKind.INVALID, error=f"`{verb} {number}` needs a value. Try `{c} help`.")
        value = args[1]
        if verb == "assign":
            if value.lower() == "me":
                return Command(CommandKind.ASSIGN, number, user="me")
            user = mention(value)
            if user:
                return Command(CommandKind.ASSIGN, number, user=user)
            return Command(CommandKind.INVALID,
                           error=f"mention the agent, e.g. `{c} assign 123 {vocabulary.mention_example}`, or use `me`")
        if verb == "status":
            try:
                return Command(CommandKind.STATUS, number, status=TicketStatus(value.lower()))
            except ValueError:
                return Command(CommandKind.INVALID,
                               error=f"unknown status {value!r}: use open, pending, resolved or closed")
        try:
            return Command(CommandKind.PRIORITY, number, priority=Priority(value.lower()))
        except ValueError:
            return Command(CommandKind.INVALID, error=f"unknown priority {value!r}: use low, normal, high or urgent")
    return Command(CommandKind.INVALID, error=f"unknown command {verb!r}. Try `{c} help`.")
