"""The ingest pipeline end to end on the real database: threading, loops, bounces, caps, replay."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from core.db.session import system_scope, tenant_scope
from core.runtime import Runtime
from core.tickets import service
from core.tickets.models import DeliveryState, Direction, Message, RawInboundStatus, Ticket, TicketStatus
from core.tickets.schemas import SYSTEM_ACTOR
from inbound.ingest.threading import ThreadRule
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail, messages, raw_records, tickets


@pytest.fixture(autouse=True)
def inbox(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")


def _first(rt: Runtime) -> Ticket:
    return tickets(rt)[0]


def test_a_new_mail_opens_a_ticket_and_records_why(runtime: Runtime) -> None:
    result = deliver(runtime, mail(message_id="<first@c.test>"))
    (message,) = messages(runtime)
    assert (result.status, result.ticket_number, result.thread_rule) == (RawInboundStatus.PROCESSED, 1, "new")
    assert (message.thread_rule, message.email_message_id) == ("new", "first@c.test")
    assert message.thread_reason.startswith("no known Message-ID")


def test_each_mail_gets_one_info_line_saying_what_happened(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    """Regression: the console showed ~13 SMTP lines per mail but never that a ticket was opened, or by which rule."""
    caplog.set_level(logging.INFO, logger="inbound.ingest.pipeline")
    deliver(runtime, mail(message_id="<first@c.test>"))
    deliver(runtime, mail(message_id="<second@c.test>", headers={"In-Reply-To": "<first@c.test>"}))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        "mail processed: opened ticket #1 (new)", "mail processed: added to ticket #1 (in-reply-to)"]


def test_a_reply_threaded_only_by_references_lands_on_its_ticket(runtime: Runtime) -> None:
    deliver(runtime, mail(message_id="<first@c.test>"))
    result = deliver(runtime, mail(subject="Re: something else", message_id="<second@c.test>",
                                   headers={"References": "<unrelated@x.test> <first@c.test>"}))
    assert (result.ticket_number, result.thread_rule) == (1, ThreadRule.REFERENCES.value)
    assert len(tickets(runtime)) == 1


def test_in_reply_to_wins_over_references(runtime: Runtime) -> None:
    deliver(runtime, mail(message_id="<a@c.test>"))
    deliver(runtime, mail(message_id="<b@c.test>", subject="another problem", sender="eve@c.test"))
    result = deliver(runtime, mail(message_id="<c@c.test>", headers={"In-Reply-To": "<b@c.test>",
                                                                    "References": "<a@c.test>"}))
    assert (result.ticket_number, result.thread_rule) == (2, "in-reply-to")


def test_a_reply_to_the_plus_address_token_lands_on_its_ticket(runtime: Runtime) -> None:
    deliver(runtime, mail())
    token = _first(runtime).reply_token
    result = deliver(runtime, mail(subject="new words", to=f"help+{token}@acme.test"), to="help@acme.test")
    assert (result.ticket_number, result.thread_rule) == (1, "reply-token")


def test_subject_tag_threads_only_when_the_sender_is_on_the_ticket(runtime: Runtime) -> None:
    deliver(runtime, mail(sender="bob@customer.test"))
    by_bob = deliver(runtime, mail(subject="Re: [TL-1] more info", sender="bob@customer.test"))
    by_mallory = deliver(runtime, mail(subject="Re: [TL-1] let me in", sender="mallory@evil.test"))
    assert (by_bob.ticket_number, by_bob.thread_rule) == (1, "subject-tag")
    assert (by_mallory.ticket_number, by_mallory.thread_rule) == (2, "new")


def test_customer_reply_reopens_a_resolved_ticket(runtime: Runtime) -> None:
    deliver(runtime, mail(message_id="<first@c.test>"))
    ticket = _first(runtime)
    with tenant_scope(runtime.factory, ticket.tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket.id)
        service.change_status(session=session, ticket=t, status=TicketStatus.RESOLVED, actor=SYSTEM_ACTOR)
    deliver(runtime, mail(headers={"In-Reply-To": "<first@c.test>"}))
    assert _first(runtime).status is TicketStatus.OPEN


def test_a_reply_to_a_ticket_closed_long_ago_opens_a_linked_ticket(runtime: Runtime) -> None:
    deliver(runtime, mail(message_id="<first@c.test>"))
    ticket = _first(runtime)
    with tenant_scope(runtime.factory, ticket.tenant_id) as session:  # ticket content: a tenant's unit of work
        session.execute(update(Ticket).values(status=TicketStatus.CLOSED,
                                              closed_at=datetime.now(timezone.utc) - timedelta(days=90)))
    result = deliver(runtime, mail(headers={"In-Reply-To": "<first@c.test>"}))
    new = tickets(runtime)[1]
    assert (result.ticket_number, new.linked_ticket_id, tickets(runtime)[0].status) == (2, ticket.id, TicketStatus.CLOSED)
    assert "closed 90 days ago" in messages(runtime)[1].thread_reason


def test_out_of_office_reply_to_nothing_opens_no_ticket(runtime: Runtime) -> None:
    result = deliver(runtime, mail(subject="Out of office: Backup fails", headers={"Auto-Submitted": "auto-replied"}))
    assert (result.status, tickets(runtime)) == (RawInboundStatus.IGNORED, [])
    assert "auto-reply" in result.outcome


def test_out_of_office_reply_on_a_ticket_is_kept_but_does_not_reopen_it(runtime: Runtime) -> None:
    deliver(runtime, mail(message_id="<first@c.test>"))
    ticket = _first(runtime)
    with tenant_scope(runtime.factory, ticket.tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket.id)
        service.change_status(session=session, ticket=t, status=TicketStatus.PENDING, actor=SYSTEM_ACTOR)
    deliver(runtime, mail(headers={"In-Reply-To": "<first@c.test>", "Auto-Submitted": "auto-replied"}))
    assert _first(runtime).status is TicketStatus.PENDING
    assert "auto-reply" in messages(runtime)[-1].flags


def test_mail_from_one_of_our_own_addresses_is_a_loop(runtime: Runtime) -> None:
    result = deliver(runtime, mail(sender="help@acme.test"))
    assert (result.status, tickets(runtime)) == (RawInboundStatus.IGNORED, [])
    assert result.outcome.startswith("loop")


def _dsn(original_id: str, recipient: str = "bob@customer.test") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.customer.test\r\nTo: help@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.customer.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original_id}>\r\nSubject: Re: x\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_a_bounce_marks_our_mail_failed_and_is_attached_to_its_ticket(runtime: Runtime) -> None:
    deliver(runtime, mail(message_id="<first@c.test>"))
    ticket = _first(runtime)
    with tenant_scope(runtime.factory, ticket.tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket.id)
        out = service.append_message(session=session, ticket=t, actor=SYSTEM_ACTOR, message=service.NewMessage(
            direction=Direction.OUTBOUND, source=t.channel, body_text="try this", email_message_id="ours1@acme.test",
            delivery_state=DeliveryState.SENT))
        sent_id = out.value.id
    result = deliver(runtime, _dsn("ours1@acme.test"))
    by_id = {m.id: m for m in messages(runtime)}
    assert (result.status, len(tickets(runtime))) == (RawInboundStatus.PROCESSED, 1)
    assert by_id[sent_id].delivery_state is DeliveryState.FAILED
    assert "bob@customer.test" in by_id[sent_id].delivery_error
    bounce = messages(runtime)[-1]
    assert (bounce.direction, "bounce" in bounce.flags) == (Direction.NOTE, True)


def test_a_bounce_for_mail_we_never_sent_opens_no_ticket(runtime: Runtime) -> None:
    result = deliver(runtime, _dsn("someone-else@elsewhere.test"))
    assert (result.status, tickets(runtime)) == (RawInboundStatus.IGNORED, [])


def test_a_different_mail_reusing_a_message_id_is_kept_and_flagged(runtime: Runtime) -> None:
    deliver(runtime, mail(message_id="<same@c.test>", body="first text"))
    result = deliver(runtime, mail(message_id="<same@c.test>", body="entirely different text"))
    assert result.status is RawInboundStatus.PROCESSED
    assert "message-id-reused" in messages(runtime)[-1].flags


def test_a_sender_over_the_cap_is_quarantined_not_looped(runtime: Runtime) -> None:
    runtime.settings.sender_cap = 3
    results = [deliver(runtime, mail(subject=f"ping {i}")) for i in range(5)]
    assert [r.status for r in results] == [RawInboundStatus.PROCESSED] * 3 + [RawInboundStatus.QUARANTINED] * 2
    assert "quarantined" in results[-1].outcome


def test_a_ticket_over_the_cap_is_quarantined(runtime: Runtime) -> None:
    runtime.settings.ticket_cap = 2
    deliver(runtime, mail(message_id="<t@c.test>"))
    results = [deliver(runtime, mail(sender=f"s{i}@c.test", headers={"In-Reply-To": "<t@c.test>"})) for i in range(3)]
    assert [r.status for r in results] == [RawInboundStatus.PROCESSED, RawInboundStatus.QUARANTINED,
                                           RawInboundStatus.QUARANTINED]


def test_unparseable_bytes_are_stored_raw_and_flagged_failed(runtime: Runtime) -> None:
    result = deliver(runtime, b"\x00\x01\x02 not a mail at all \xff" * 3)
    (raw,) = raw_records(runtime)
    assert raw.payload.startswith(b"\x00\x01")
    assert (result.status, raw.status, tickets(runtime)) == (RawInboundStatus.FAILED, RawInboundStatus.FAILED, [])
    assert raw.error.startswith("unparseable: no RFC 5322 header")


def test_processing_twice_is_a_no_op(runtime: Runtime) -> None:
    from core.blobs import BlobStore
    from inbound.ingest.pipeline import IngestDeps, process_raw

    first = deliver(runtime, mail())
    deps = IngestDeps(runtime.settings, runtime.factory, runtime.registry, BlobStore.from_settings(runtime.settings))
    again = process_raw(deps, tenant_id=_first(runtime).tenant_id, raw_id=first.raw_id)
    assert (again.status, again.message_id, len(messages(runtime))) == (RawInboundStatus.PROCESSED, first.message_id, 1)


def test_attachments_are_stored_content_addressed(runtime: Runtime) -> None:
    from email import policy
    from email.message import EmailMessage

    from core.blobs import BlobStore
    from core.tickets.models import Attachment

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "bob@c.test", "help@acme.test", "log", "<att@c.test>"
    msg.set_content("see attached")
    msg.add_attachment(b"line1\nline2\n", maintype="text", subtype="plain", filename="restic.log")
    deliver(runtime, msg.as_bytes(policy=policy.SMTP))
    with system_scope(runtime.factory) as session:
        (att,) = session.query(Attachment).all()
    assert (att.filename, att.size) == ("restic.log", 12)
    assert BlobStore.from_settings(runtime.settings).get(att.sha256) == b"line1\nline2\n"
