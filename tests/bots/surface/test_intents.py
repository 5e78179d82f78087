"""What agents' words mean (pure)."""

from __future__ import annotations

import pytest

from bots.surface.intents import CommandKind, ThreadIntent, classify_thread_text, parse_command
from core.tenancy.models import ReplyMode
from core.tickets.models import Priority, TicketStatus


@pytest.mark.parametrize(
    ("text", "mode", "intent", "kept"),
    [
        ("note: internal", ReplyMode.THREAD, ThreadIntent.NOTE, "internal"),
        ("NOTE : shouting", ReplyMode.THREAD, ThreadIntent.NOTE, "shouting"),
        ("// slashes", ReplyMode.THREAD, ThreadIntent.NOTE, "slashes"),
        ("  //indented", ReplyMode.THREAD, ThreadIntent.NOTE, "indented"),
        ("Hello Bob", ReplyMode.THREAD, ThreadIntent.PUBLIC_REPLY, "Hello Bob"),
        ("see https://x.test/a//b", ReplyMode.THREAD, ThreadIntent.PUBLIC_REPLY, "see https://x.test/a//b"),
        ("notes are great", ReplyMode.THREAD, ThreadIntent.PUBLIC_REPLY, "notes are great"),
        ("Hello Bob", ReplyMode.EXPLICIT, ThreadIntent.INTERNAL, "Hello Bob"),
        ("note: x", ReplyMode.EXPLICIT, ThreadIntent.NOTE, "x"),
    ],
)
def test_thread_text_is_classified_by_prefix_and_reply_mode(text: str, mode: ReplyMode, intent: ThreadIntent,
                                                            kept: str) -> None:
    result = classify_thread_text(text, reply_mode=mode)
    assert (result.intent, result.text) == (intent, kept)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (CommandKind.HELP, None, None, None, None)),
        ("help", (CommandKind.HELP, None, None, None, None)),
        ("mine", (CommandKind.MINE, None, None, None, None)),
        ("open", (CommandKind.OPEN, None, None, None, None)),
        ("assign 12 me", (CommandKind.ASSIGN, 12, "me", None, None)),
        ("assign #12 <@U123|ann>", (CommandKind.ASSIGN, 12, "U123", None, None)),
        ("status TL-7 resolved", (CommandKind.STATUS, 7, None, TicketStatus.RESOLVED, None)),
        ("priority 3 URGENT", (CommandKind.PRIORITY, 3, None, None, Priority.URGENT)),
        ("draft 9", (CommandKind.DRAFT, 9, None, None, None)),
    ],
)
def test_slash_commands_parse(text: str, expected: tuple[object, ...]) -> None:
    c = parse_command(text)
    assert (c.kind, c.ticket_number, c.user, c.status, c.priority) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("assign", "needs a ticket number"),
        ("status 4", "needs a value"),
        ("status 4 done", "unknown status 'done'"),
        ("priority 4 meh", "unknown priority 'meh'"),
        ("assign 4 bob", "mention the agent"),
        ("dance", "unknown command 'dance'"),
    ],
)
def test_bad_commands_explain_themselves(text: str, hint: str) -> None:
    c = parse_command(text)
    assert c.kind is CommandKind.INVALID and c.error is not None and hint in c.error
