"""Agents work tickets by email (issue 16): a verified agent mail acts as the agent; anything else is held."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as hs
from pydantic import SecretStr
from sqlalchemy import select, update

from core.db.session import system_scope, tenant_scope
from core.runtime import Runtime
from core.tenancy.models import Agent, AgentNotification, AgentTicketToken, Inbox, ReplyMode
from core.tickets import drafts
from core.tickets.intents import MailCommand, MailCommandKind, parse_agent_mail
from core.tickets.models import DeliveryState, Direction, Priority, RawInboundStatus, Ticket, TicketStatus
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail, messages, raw_records, tickets
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import ReceivedMail, SmtpSink, smtp_sink  # noqa: F401 (fixture)

RELAY = "mx.acme.test"
PASS = f"{RELAY}; spf=pass smtp.mailfrom=acme.test; dkim=pass header.d=acme.test; dmarc=pass header.from=acme.test"
FAIL = f"{RELAY}; spf=fail smtp.mailfrom=evil.test; dkim=none; dmarc=fail header.from=acme.test"


@pytest.fixture()
def world(runtime: Runtime, smtp_sink: SmtpSink) -> Iterator[uuid.UUID]:  # noqa: F811
    s = runtime.settings
    s.trusted_authserv_ids, s.undo_seconds, s.outbound_smtp_url = RELAY, 0, SecretStr(smtp_sink.url)
    tenant, _ = make_tenant(runtime, address="help@acme.test")
    with system_scope(runtime.factory) as session:
        session.add(Agent(tenant_id=tenant.id, name="Ann", email="ann@acme.test", notify_prefs={"new_tickets": True}))
    yield tenant.id


def _notified(runtime: Runtime, sink: SmtpSink) -> tuple[str, str, ReceivedMail]:
    """A customer writes; Ann is notified: (her token, the notification's Message-ID, the mail)."""
    deliver(runtime, mail(body="restic says the repository is locked"))
    drain_jobs(runtime)
    (note,) = sink.wait_for(1)
    with system_scope(runtime.factory) as session:
        token = session.execute(select(AgentTicketToken.token)).scalar_one()
        mid = session.execute(select(AgentNotification.email_message_id)).scalar_one()
    return token, mid, note


def _agent_reply(token: str, mid: str, body: str, *, sender: str = "ann@acme.test", auth: str = PASS,
                 note: bool = False, headers: dict[str, str] | None = None) -> bytes:
    quoted = "\n\nOn Tue, 1 Apr 2025 at 10:00, Help <help@acme.test> wrote:\n> New ticket: [TL-1] Backup fails\n" \
             "> restic says the repository is locked\n"
    to = f"help+{'note-' if note else ''}{token}@acme.test"
    return mail(sender=sender, to=to, subject="Re: [TL-1] Backup fails", body=body + quoted,
                headers={"Authentication-Results": auth, "In-Reply-To": f"<{mid}>", **(headers or {})})


def _to_customer(sink: SmtpSink) -> list[ReceivedMail]:
    return [m for m in sink.mails if "bob@customer.test" in m.rcpt_tos]


def _ticket(runtime: Runtime) -> Ticket:
    (ticket,) = tickets(runtime)
    return ticket


def test_a_verified_agent_reply_reaches_the_customer_once_as_the_agent_without_the_quote(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    result = deliver(runtime, _agent_reply(token, mid, "Please restart the backup."), peer="127.0.0.1")
    assert (result.status, result.thread_rule) == (RawInboundStatus.PROCESSED, "agent-mail")
    drain_jobs(runtime, include_delayed=True)
    smtp_sink.wait_for(2)
    (sent,) = _to_customer(smtp_sink)
    body = sent.message.get_body(("plain",))
    assert body is not None
    assert body.get_content().strip() == "Please restart the backup."
    reply = [m for m in messages(runtime) if m.direction is Direction.OUTBOUND]
    assert [(m.author_name, m.delivery_state) for m in reply] == [("Ann", DeliveryState.SENT)]
    assert reply[0].author_agent_id is not None
    assert [m.direction for m in messages(runtime)].count(Direction.INBOUND) == 1  # never a customer message


def test_note_prefix_makes_an_internal_note_and_mails_no_one(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply(token, mid, "note: customer is on the old plan"), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    time.sleep(0.2)
    assert _to_customer(smtp_sink) == []
    notes = [m.body_text for m in messages(runtime) if m.direction is Direction.NOTE]
    assert notes == ["customer is on the old plan"]


def test_the_note_address_makes_a_note_whatever_the_text(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply(token, mid, "Checked the logs: disk full.", note=True), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    assert _to_customer(smtp_sink) == []
    assert [m.direction for m in messages(runtime)][-1] is Direction.NOTE


def test_commands_at_the_top_resolve_assign_and_set_priority(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply(token, mid, "#assign me\n#priority high\n#resolve"), peer="127.0.0.1")
    ticket = _ticket(runtime)
    assert (ticket.status, ticket.priority, ticket.assignee_id is not None) == (
        TicketStatus.RESOLVED, Priority.HIGH, True)
    drain_jobs(runtime, include_delayed=True)
    assert _to_customer(smtp_sink) == []


def test_send_draft_sends_the_pending_draft_as_it_is(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    ticket = _ticket(runtime)
    with tenant_scope(runtime.factory, world) as session:
        drafts.propose(session=session, ticket=session.get_one(Ticket, ticket.id), for_message_id=None,
                       text="Run `restic unlock`, then retry.", citations=[], confidence=0.9, answered=True)
    deliver(runtime, _agent_reply(token, mid, "#send-draft"), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    (sent,) = _to_customer(smtp_sink)
    body = sent.message.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Run `restic unlock`, then retry."


@pytest.mark.parametrize(("text", "mailed"), [("Try again now.", False), ("#reply\nTry again now.", True)])
def test_explicit_mode_sends_only_with_reply(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink, text: str, mailed: bool  # noqa: F811
) -> None:
    with system_scope(runtime.factory) as session:
        session.execute(update(Inbox).values(reply_mode=ReplyMode.EXPLICIT))
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply(token, mid, text), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    time.sleep(0.2)
    assert len(_to_customer(smtp_sink)) == (1 if mailed else 0)
    last = [m for m in messages(runtime) if m.direction is not Direction.INBOUND][-1]
    assert (last.direction, last.body_text) == (Direction.OUTBOUND if mailed else Direction.NOTE, "Try again now.")


def _held_only(runtime: Runtime, smtp_sink: SmtpSink, reason: str) -> None:  # noqa: F811
    drain_jobs(runtime, include_delayed=True)
    time.sleep(0.2)
    assert _to_customer(smtp_sink) == []
    assert [m.direction for m in messages(runtime)] == [Direction.INBOUND]
    raw = raw_records(runtime)[-1]
    assert (raw.status, raw.held) == (RawInboundStatus.QUARANTINED, True)
    assert reason in (raw.outcome or "")


def test_a_forged_agent_sender_failing_dmarc_is_held_and_nothing_is_sent(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply(token, mid, "Please pay to IBAN XX.", auth=FAIL), peer="127.0.0.1")
    _held_only(runtime, smtp_sink, "DMARC fail")


def test_an_agent_token_used_from_another_address_is_held(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply(token, mid, "Hi", sender="mallory@evil.test"), peer="127.0.0.1")
    _held_only(runtime, smtp_sink, "not from the agent's address")


def test_an_unknown_or_revoked_agent_token_is_held(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    with system_scope(runtime.factory) as session:
        session.execute(update(Agent).values(active=False))
    deliver(runtime, _agent_reply(token, mid, "Hi"), peer="127.0.0.1")
    _held_only(runtime, smtp_sink, "revoked")
    deliver(runtime, _agent_reply("A" * 32, "nobody@acme.test", "Hi"), peer="127.0.0.1")
    assert "unknown or revoked agent token" in (raw_records(runtime)[-1].outcome or "")


def test_an_agents_out_of_office_to_a_notification_is_ignored(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply(token, mid, "I am out of the office until Monday.",
                                  headers={"Auto-Submitted": "auto-replied"}), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    assert _to_customer(smtp_sink) == []
    assert raw_records(runtime)[-1].status is RawInboundStatus.IGNORED


def test_a_customer_who_guesses_nothing_is_unaffected(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    _notified(runtime, smtp_sink)
    ticket = _ticket(runtime)
    again = deliver(runtime, mail(to=f"help+{ticket.reply_token}@acme.test", body="Still broken."))
    assert (again.status, again.ticket_number, again.thread_rule) == (RawInboundStatus.PROCESSED, 1, "reply-token")
    assert [m.direction for m in messages(runtime)] == [Direction.INBOUND, Direction.INBOUND]


# ---- the command parser (pure) ----


@pytest.mark.parametrize(
    ("text", "commands", "rest"),
    [
        ("#resolve", (MailCommand(MailCommandKind.STATUS, status=TicketStatus.RESOLVED),), ""),
        ("#Assign me\n\n#priority HIGH\nThanks!", (MailCommand(MailCommandKind.ASSIGN_ME),
                                                  MailCommand(MailCommandKind.PRIORITY, priority=Priority.HIGH)),
         "Thanks!"),
        ("#1 tip: restart it", (), "#1 tip: restart it"),
        ("#priority whenever\n#resolve", (), "#priority whenever\n#resolve"),
        ("Hello\n#resolve", (), "Hello\n#resolve"),
        ("#send-draft\n#reply", (MailCommand(MailCommandKind.SEND_DRAFT), MailCommand(MailCommandKind.REPLY)), ""),
    ],
)
def test_commands_are_read_only_at_the_top(text: str, commands: tuple[MailCommand, ...], rest: str) -> None:
    parsed = parse_agent_mail(text)
    assert (parsed.commands, parsed.text) == (commands, rest)


@given(hs.text())
def test_the_parser_never_raises_and_unknown_words_stay_text(text: str) -> None:
    parsed = parse_agent_mail(text)
    assert len(parsed.commands) <= 20
    if not text.lstrip().startswith("#"):
        assert parsed.commands == ()
