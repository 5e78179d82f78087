"""What agents' words mean (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bots.slack import ids as slack_ids
from bots.surface.access import MemberFacts, refusal
from bots.surface.intents import CommandKind, ThreadIntent, classify_thread_text, help_text, parse_command
from bots.surface.vocabulary import Vocabulary
from bots.teams import ids as teams_ids
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
        ("assign 12 <@U123>", (CommandKind.ASSIGN, 12, "U123", None, None)),
        ("status TL-7 resolved", (CommandKind.STATUS, 7, None, TicketStatus.RESOLVED, None)),
        ("priority 3 URGENT", (CommandKind.PRIORITY, 3, None, None, Priority.URGENT)),
        ("draft 9", (CommandKind.DRAFT, 9, None, None, None)),
    ],
)
def test_slash_commands_parse(text: str, expected: tuple[object, ...]) -> None:
    c = parse_command(text, vocabulary=slack_ids.VOCABULARY, mention=slack_ids.mentioned_user)
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
    c = parse_command(text, vocabulary=slack_ids.VOCABULARY, mention=slack_ids.mentioned_user)
    assert c.kind is CommandKind.INVALID and c.error is not None and hint in c.error


SURFACES = [pytest.param(slack_ids.VOCABULARY, id="slack"), pytest.param(teams_ids.VOCABULARY, id="teams")]


def test_a_slack_mention_means_nothing_to_the_shared_parser_without_the_slack_adapter() -> None:
    """The shared layer holds no mention markup: only the adapter's `mention` resolves one."""
    c = parse_command("assign 12 <@U123|ann>", vocabulary=teams_ids.VOCABULARY)
    assert c.kind is CommandKind.INVALID and c.error is not None and "@Threadline assign 123 @Ann" in c.error


def test_the_adapter_resolves_mentions_in_its_own_markup() -> None:
    c = parse_command("assign 12 @ann", vocabulary=teams_ids.VOCABULARY,
                      mention=lambda word: "aad-1" if word == "@ann" else None)
    assert (c.kind, c.user) == (CommandKind.ASSIGN, "aad-1")


@pytest.mark.parametrize("vocabulary", SURFACES)
@pytest.mark.parametrize("text", ["help", "assign", "status 4", "dance", "assign 4 bob"])
def test_help_and_usage_errors_speak_the_surface_command(vocabulary: Vocabulary, text: str) -> None:
    c = parse_command(text, vocabulary=vocabulary)
    shown = help_text(vocabulary) if c.kind is CommandKind.HELP else c.error or ""
    other = teams_ids.VOCABULARY if vocabulary is slack_ids.VOCABULARY else slack_ids.VOCABULARY
    assert vocabulary.command in shown and other.command not in shown


_FACTS = dict(is_bot=False, is_guest=False, other_workspace=False, in_group=False, in_channel=False)


def test_teams_refusals_hold_no_slack_markup() -> None:
    by_group = refusal(MemberFacts(group="G1", channels=(), **_FACTS), teams_ids.VOCABULARY) or ""
    by_channel = refusal(MemberFacts(group=None, channels=("19:abc@thread.tacv2",), **_FACTS),
                         teams_ids.VOCABULARY) or ""
    assert by_group and by_channel and not any(mark in by_group + by_channel for mark in ("<!", "<#", "<@"))


def test_slack_refusals_link_the_channel_and_the_group() -> None:
    by_group = refusal(MemberFacts(group="S1", channels=(), **_FACTS), slack_ids.VOCABULARY) or ""
    by_channel = refusal(MemberFacts(group=None, channels=("C1", "C2"), **_FACTS), slack_ids.VOCABULARY) or ""
    assert ("<!subteam^S1>" in by_group, "<#C1>, <#C2>" in by_channel) == (True, True)


@given(st.text(max_size=400))
def test_any_command_text_parses_to_a_command_or_a_reason(text: str) -> None:
    c = parse_command(text, vocabulary=slack_ids.VOCABULARY, mention=slack_ids.mentioned_user)
    assert c.kind is not CommandKind.INVALID or (c.error or "").strip()
