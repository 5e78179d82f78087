"""Outbound email end to end: real Postgres, the real job runner (and worker), a real SMTP sink."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core import plugin as core_plugin
from core.blobs import BlobStore
from core.db.session import system_scope, tenant_scope
from core.errors import Conflict
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.outbox import enqueue, record_events
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.jobs.worker import serve_worker
from core.registry import Registry
from core.runtime import Runtime
from core.settings import Settings
from core.tenancy.models import Inbox
from core.tickets import service
from core.tickets.events import EventKind
from core.tickets.models import ActorKind, Attachment, Channel, DeliveryState, Message
from core.tickets.replies import cancel_pending_reply, send_public_reply
from core.tickets.schemas import SYSTEM_ACTOR, Actor
from inbound.email import outbound_plugin
from inbound.email.outbound import (
    ACKNOWLEDGE_JOB,
    ACKNOWLEDGED,
    DELIVER_JOB,
    NOT_CONFIGURED,
    OutboundNotConfiguredError,
    parse_relay_url,
)
from tests.conftest import make_tenant
from tests.core.factories import inbound, make_ticket
from tests.support.servers import free_port
from tests.support.smtp_sink import SmtpSink, self_signed_tls_context

AGENT = Actor(ActorKind.AGENT, "agent-1", "Alice")
Ids = tuple[uuid.UUID, uuid.UUID]  # (tenant id, ticket id)


def _settings(tmp_path: Path, url: str | None) -> Settings:
    return Settings(
        THREADLINE_DATA_DIR=tmp_path, THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=2,
        THREADLINE_OUTBOUND_SMTP_URL=url,
    )


@pytest.fixture()
def settings(tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    return _settings(tmp_path, smtp_sink.url)


@pytest.fixture()
def registry() -> Registry:
    # Only core and this plugin: the test does not depend on how inbound/plugin.py wires it.
    registry = Registry()
    core_plugin.register(registry)
    outbound_plugin.register(registry)
    registry.subscribe(EventKind.TICKET_OPENED, ACKNOWLEDGE_JOB)
    return registry


# ---- the relay URL ----


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.test", ("relay.test", 25, False, "auto", None, None)),
        ("smtp://u%40x:p%3Aw@relay.test:587", ("relay.test", 587, False, "auto", "u@x", "p:w")),
        ("smtps://u:p@relay.test", ("relay.test", 465, True, "auto", "u", "p")),
        ("smtp://relay.test:2525?starttls=0", ("relay.test", 2525, False, "off", None, None)),
        ("smtp://relay.test?starttls=1&timeout=5", ("relay.test", 25, False, "require", None, None)),
    ],
)
def test_the_relay_url_is_parsed(url: str, expected: tuple[object, ...]) -> None:
    relay = parse_relay_url(url)
    assert (relay.host, relay.port, relay.implicit_tls, relay.starttls, relay.username, relay.password) == expected


@pytest.mark.parametrize("url", ["http://relay.test", "relay.test:25", "smtp://", "smtp://h:notaport", "smtp://h?timeout=x"])
def test_a_bad_relay_url_is_a_configuration_error_that_does_not_echo_it(url: str) -> None:
    with pytest.raises(OutboundNotConfiguredError) as caught:
        parse_relay_url(url.replace("//", "//user:hunter2@", 1) if "//" in url else url)
    assert "hunter2" not in str(caught.value)


def test_the_relay_password_never_shows_in_its_text() -> None:
    relay = parse_relay_url("smtps://user:hunter2@relay.test")
    assert "hunter2" not in repr(relay) and "hunter2" not in str(relay)


# ---- helpers ----


def _ticket(rt: Runtime, subject: str = "Backup fails") -> tuple[uuid.UUID, uuid.UUID, int, Inbox]:
    tenant, inbox = make_tenant(rt)
    ticket_id, number = make_ticket(rt, tenant_id=tenant.id, inbox_id=inbox.id, subject=subject)
    return tenant.id, ticket_id, number, inbox


def _customer_writes(rt: Runtime, ids: Ids, message_id: str, references: tuple[str, ...] = (), **kw: object) -> None:
    tenant_id, ticket_id = ids
    with tenant_scope(rt.factory, tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        service.append_message(
            session=session, ticket=ticket, actor=SYSTEM_ACTOR,
            message=inbound("More details", email_message_id=message_id, references=references, **kw),
        )


def _reply(rt: Runtime, ids: Ids, text: str = "Please try again.\n\nAlice") -> tuple[uuid.UUID, int]:
    """An agent's public reply: (message id, outbox id of its delivery job)."""
    tenant_id, ticket_id = ids
    with tenant_scope(rt.factory, tenant_id) as session:
        ticket = service.get_ticket(session=session, ticket_id=ticket_id)
        out = send_public_reply(session=session, registry=rt.registry, ticket=ticket, text=text, actor=AGENT)
        record_events(session=session, registry=rt.registry, events=out.events)
        message_id = out.value.id
    return message_id, _outbox_id(rt, DELIVER_JOB, "message_id", str(message_id))


def _outbox_id(rt: Runtime, job: str, key: str, value: str) -> int:
    with system_scope(rt.factory) as session:
        rows = session.execute(select(OutboxRow).where(OutboxRow.job == job).order_by(OutboxRow.id)).scalars()
        return [r.id for r in rows if r.payload.get(key) == value][-1]


def _run(rt: Runtime, outbox_id: int, settings: Settings | None = None) -> RunResult:
    return run_outbox_job(outbox_id, settings=settings or rt.settings, factory=rt.factory, registry=rt.registry)


def _message(rt: Runtime, tenant_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    with tenant_scope(rt.factory, tenant_id) as session:
        return session.get_one(Message, message_id)


def _outbox(rt: Runtime, outbox_id: int) -> OutboxRow:
    with system_scope(rt.factory) as session:
        return session.get_one(OutboxRow, outbox_id)


def _timeline_kinds(rt: Runtime, ids: Ids) -> list[str]:
    with tenant_scope(rt.factory, ids[0]) as session:
        return [e.kind for e in service.ticket_timeline(session=session, ticket_id=ids[1])]


# ---- public replies ----


def test_a_reply_is_mailed_once_threaded_to_the_customers_chain(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    tenant_id, ticket_id, number, inbox = _ticket(runtime, subject="Backup fails")
    ids = (tenant_id, ticket_id)
    _customer_writes(runtime, ids, "c2@mail.example.test", ("c1@mail.example.test",))
    first_id, first_job = _reply(runtime, ids, "First answer")
    assert _run(runtime, first_job) is RunResult.DONE
    _customer_writes(runtime, ids, "c3@mail.example.test", ("c1@mail.example.test", "c2@mail.example.test"))
    second_id, second_job = _reply(runtime, ids)
    assert _run(runtime, second_job) is RunResult.DONE

    first, second = smtp_sink.wait_for(2)
    ours = [_message(runtime, tenant_id, i) for i in (first_id, second_id)]
    mail = second.message
    token = _token(runtime, ids)
    assert (second.mail_from, second.rcpt_tos) == (inbox.address, ("bob@example.test",))
    assert mail["From"].addresses[0].addr_spec == inbox.address
    assert mail["To"] == "bob@example.test"
    assert mail["Subject"] == f"Re: [TL-{number}] Backup fails"
    assert mail["Message-ID"] == f"<{ours[1].email_message_id}>"
    assert ours[1].email_message_id.endswith("@" + inbox.address.split("@")[1])
    assert mail["In-Reply-To"] == "<c3@mail.example.test>"
    assert mail["References"].split() == [
        "<c1@mail.example.test>", "<c2@mail.example.test>", "<c3@mail.example.test>", f"<{ours[0].email_message_id}>"
    ]
    local, domain = inbox.address.split("@")
    assert mail["Reply-To"].addresses[0].addr_spec == f"{local}+{token}@{domain}"
    assert (mail["Auto-Submitted"], mail["X-Auto-Response-Suppress"]) == (None, None)
    body = mail.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n").startswith("Please try again.\n\nAlice")
    assert [m.delivery_state for m in ours] == [DeliveryState.SENT, DeliveryState.SENT]
    assert (ours[1].in_reply_to, ours[1].references[-1]) == ("c3@mail.example.test", ours[0].email_message_id)
    assert first.message["In-Reply-To"] == "<c2@mail.example.test>"
    assert _timeline_kinds(runtime, ids).count("email.sent") == 2


def _token(rt: Runtime, ids: Ids) -> str:
    with tenant_scope(rt.factory, ids[0]) as session:
        return service.get_ticket(session=session, ticket_id=ids[1]).reply_token


def test_running_the_delivery_twice_sends_one_mail(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    assert _run(runtime, job) is RunResult.DONE
    assert _run(runtime, job) is RunResult.SKIPPED
    # Even a second outbox row for the same message (a replay) finds it sent and does nothing.
    with tenant_scope(runtime.factory, tenant_id) as session:
        again = enqueue(session=session, tenant_id=tenant_id, job=DELIVER_JOB,
                        payload={"message_id": str(message_id), "ticket_id": str(ticket_id)})
        session.flush()
        again_id = again.id
    assert _run(runtime, again_id) is RunResult.DONE
    time.sleep(0.2)
    assert len(smtp_sink.mails) == 1


def test_a_reply_cancelled_before_the_job_runs_is_never_mailed(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    with tenant_scope(runtime.factory, tenant_id) as session:
        cancel_pending_reply(session=session, message=session.get_one(Message, message_id))
    assert _run(runtime, job) is RunResult.DONE
    time.sleep(0.2)
    assert smtp_sink.mails == []
    assert _message(runtime, tenant_id, message_id).delivery_state is DeliveryState.CANCELLED


def test_an_undo_in_progress_makes_the_job_wait_and_then_send_nothing(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    results: list[RunResult] = []
    with tenant_scope(runtime.factory, tenant_id) as session:
        message = session.execute(select(Message).where(Message.id == message_id).with_for_update()).scalar_one()
        worker = threading.Thread(target=lambda: results.append(_run(runtime, job)))
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive()  # blocked on the row the Undo holds
        cancel_pending_reply(session=session, message=message)
    worker.join(timeout=10)
    assert results == [RunResult.DONE]
    assert smtp_sink.mails == []


def test_undo_after_the_mail_went_out_is_refused(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    _run(runtime, job)
    with pytest.raises(Conflict, match="already sent"):
        with tenant_scope(runtime.factory, tenant_id) as session:
            cancel_pending_reply(session=session, message=session.get_one(Message, message_id))


def test_a_4xx_answer_is_retried_and_the_retry_sends_the_same_message_id(
    runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    smtp_sink.refuse_next(1, code=451, text="4.3.0 try again later")
    with pytest.raises(JobFailed):
        _run(runtime, job)
    pending = _message(runtime, tenant_id, message_id)
    assert pending.delivery_state is DeliveryState.PENDING
    assert pending.delivery_error is not None
    assert "451 4.3.0 try again later" in pending.delivery_error and "will retry" in pending.delivery_error
    assert smtp_sink.mails == []
    assert _run(runtime, job) is RunResult.DONE
    (mail,) = smtp_sink.wait_for(1)
    sent = _message(runtime, tenant_id, message_id)
    assert mail.message["Message-ID"] == f"<{pending.email_message_id}>"  # committed before the first try
    assert (sent.delivery_state, sent.delivery_error) == (DeliveryState.SENT, None)
    assert _outbox(runtime, job).attempts == 2


@pytest.mark.parametrize(
    ("stage", "expected"),
    [("data", "refused the message: 550"), ("rcpt", "refused the recipient bob@example.test: 550")],
)
def test_a_5xx_answer_fails_the_message_with_the_reason_and_kills_the_job(
    runtime: Runtime, smtp_sink: SmtpSink, stage: str, expected: str
) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    smtp_sink.refuse_next(1, code=550, text="5.1.1 mailbox unavailable", stage=stage)
    assert _run(runtime, job) is RunResult.DEAD
    failed = _message(runtime, tenant_id, message_id)
    assert failed.delivery_state is DeliveryState.FAILED
    assert failed.delivery_error is not None and expected in failed.delivery_error
    assert "5.1.1 mailbox unavailable" in failed.delivery_error
    assert _outbox(runtime, job).attempts == 1  # not retried
    assert smtp_sink.mails == []
    assert "email.failed" in _timeline_kinds(runtime, (tenant_id, ticket_id))


def test_without_an_outbound_url_the_reply_fails_in_plain_words(runtime: Runtime, tmp_path: Path) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    assert _run(runtime, job, settings=_settings(tmp_path, None)) is RunResult.DEAD
    failed = _message(runtime, tenant_id, message_id)
    assert (failed.delivery_state, failed.delivery_error) == (DeliveryState.FAILED, NOT_CONFIGURED)


def test_an_unreachable_relay_is_retried_then_the_reply_fails(runtime: Runtime, tmp_path: Path) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    nowhere = _settings(tmp_path, f"smtp://127.0.0.1:{free_port()}?timeout=2")
    for _ in range(2):  # THREADLINE_JOB_MAX_RETRIES=2: attempts 1 and 2 are retried
        with pytest.raises(JobFailed):
            _run(runtime, job, settings=nowhere)
        assert _message(runtime, tenant_id, message_id).delivery_state is DeliveryState.PENDING
    assert _run(runtime, job, settings=nowhere) is RunResult.DEAD
    failed = _message(runtime, tenant_id, message_id)
    assert failed.delivery_state is DeliveryState.FAILED
    assert failed.delivery_error is not None
    assert failed.delivery_error.startswith("gave up after 3 attempts: could not reach the mail server")


def test_attachments_of_the_reply_are_mailed(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    content = b"%PDF-1.4 fake\x00\xff"
    sha = BlobStore.from_settings(runtime.settings).put(content)
    with tenant_scope(runtime.factory, tenant_id) as session:
        session.add(Attachment(tenant_id=tenant_id, message_id=message_id, filename="report.pdf",
                               content_type="application/pdf", size=len(content), sha256=sha))
    _run(runtime, job)
    (mail,) = smtp_sink.wait_for(1)
    found = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
             for p in mail.message.iter_attachments()]
    assert found == [("report.pdf", "application/pdf", content)]


def test_hostile_customer_data_cannot_inject_headers_into_the_reply(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    tenant, inbox = make_tenant(runtime)
    with tenant_scope(runtime.factory, tenant.id) as session:
        contact = service.find_or_create_contact(
            session=session, tenant_id=tenant.id, email="bob@example.test", name="Bob\r\nBcc: victim@evil.test"
        )
        out = service.open_ticket(
            session=session, tenant_id=tenant.id, inbox_id=inbox.id, channel=Channel.EMAIL, contact_id=contact.id,
            subject="=?utf-8?q?Help=0D=0ABcc:_victim2@evil.test?=", actor=SYSTEM_ACTOR,
            first_message=inbound(author_contact_id=contact.id, email_message_id="c1@x.test",
                                  references=("ok@x.test", "evil@x.test>\r\nBcc: victim3@evil.test")),
        )
        ticket_id = out.value.id
    _, job = _reply(runtime, (tenant.id, ticket_id))
    assert _run(runtime, job) is RunResult.DONE
    (mail,) = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ("bob@example.test",)
    assert "bcc" not in {k.lower() for k in mail.message.keys()}
    assert mail.message["References"].split() == ["<ok@x.test>", "<c1@x.test>"]


def test_a_relay_with_login_gets_the_credentials_from_the_url(runtime: Runtime, tmp_path: Path) -> None:
    sink = SmtpSink(credentials=("relay-user", "p@ss:word"))
    sink.start()
    try:
        tenant_id, ticket_id, _, _ = _ticket(runtime)
        _, job = _reply(runtime, (tenant_id, ticket_id))
        url = f"smtp://relay-user:p%40ss%3Aword@{sink.host}:{sink.port}"
        assert _run(runtime, job, settings=_settings(tmp_path, url)) is RunResult.DONE
        assert len(sink.wait_for(1)) == 1 and sink.logins == ["relay-user"]
    finally:
        sink.stop()


@pytest.fixture()
def tls_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    sink = SmtpSink(tls_context=self_signed_tls_context(tmp_path))
    sink.start()
    yield sink
    sink.stop()


def test_starttls_is_used_when_the_relay_offers_it(runtime: Runtime, tls_sink: SmtpSink, tmp_path: Path) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    _, job = _reply(runtime, (tenant_id, ticket_id))
    assert _run(runtime, job, settings=_settings(tmp_path, tls_sink.url + "?verify=0")) is RunResult.DONE
    (mail,) = tls_sink.wait_for(1)
    assert mail.tls


def test_an_untrusted_relay_certificate_fails_the_reply(runtime: Runtime, tls_sink: SmtpSink, tmp_path: Path) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    assert _run(runtime, job, settings=_settings(tmp_path, tls_sink.url)) is RunResult.DEAD
    failed = _message(runtime, tenant_id, message_id)
    assert failed.delivery_error is not None and "certificate" in failed.delivery_error
    assert tls_sink.mails == []


def test_through_the_worker_a_4xx_is_retried_with_backoff_and_mailed_once(
    runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    tenant_id, ticket_id, _, _ = _ticket(runtime)
    smtp_sink.refuse_next(1, code=421, text="4.7.0 slow down")
    message_id, job = _reply(runtime, (tenant_id, ticket_id))
    stop = threading.Event()
    thread = threading.Thread(target=serve_worker, args=(runtime,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: _message(runtime, tenant_id, message_id).delivery_state is DeliveryState.SENT)
        _wait_for(lambda: _outbox(runtime, job).status is OutboxStatus.DONE)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert len(smtp_sink.mails) == 1
    assert _outbox(runtime, job).attempts == 2


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


# ---- acknowledgement of new tickets ----


def _ack_inbox(rt: Runtime, inbox_id: uuid.UUID, on: bool = True) -> None:
    with system_scope(rt.factory) as session:
        session.execute(update(Inbox).where(Inbox.id == inbox_id).values(send_acknowledgement=on))


def _email_ticket(rt: Runtime, *, flags: tuple[str, ...] = (), ack: bool = True) -> tuple[Ids, int, Inbox]:
    """A ticket opened by a customer's mail with a Message-ID (and the ingest flags given)."""
    tenant, inbox = make_tenant(rt)
    _ack_inbox(rt, inbox.id, ack)
    with tenant_scope(rt.factory, tenant.id) as session:
        contact = service.find_or_create_contact(session=session, tenant_id=tenant.id, email="bob@example.test",
                                                 name="Bob")
        out = service.open_ticket(
            session=session, tenant_id=tenant.id, inbox_id=inbox.id, subject="Backup fails", channel=Channel.EMAIL,
            contact_id=contact.id, actor=SYSTEM_ACTOR,
            first_message=inbound(author_contact_id=contact.id, email_message_id="first@mail.example.test",
                                  references=("root@mail.example.test",), flags=flags),
        )
        record_events(session=session, registry=rt.registry, events=out.events)
        ids = (tenant.id, out.value.id)
    return ids, _outbox_id(rt, ACKNOWLEDGE_JOB, "ticket_id", str(ids[1])), inbox


def test_a_new_ticket_is_acknowledged_once_as_automatic_mail(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    ids, job, inbox = _email_ticket(runtime)
    assert _run(runtime, job) is RunResult.DONE
    with tenant_scope(runtime.factory, ids[0]) as session:  # a replayed job for the same ticket
        replay = enqueue(session=session, tenant_id=ids[0], job=ACKNOWLEDGE_JOB, payload={"ticket_id": str(ids[1])})
        session.flush()
        replay_id = replay.id
    assert _run(runtime, replay_id) is RunResult.DONE
    time.sleep(0.2)
    (ack,) = smtp_sink.mails
    mail = ack.message
    assert ack.mail_from == "<>"  # RFC 3834 §3.3: null reverse-path
    assert (mail["Auto-Submitted"], mail["X-Auto-Response-Suppress"]) == ("auto-replied", "All")
    assert mail["Subject"] == "Auto: [TL-1] Backup fails"
    assert mail["In-Reply-To"] == "<first@mail.example.test>"
    assert mail["References"].split() == ["<root@mail.example.test>", "<first@mail.example.test>"]
    assert mail["From"].addresses[0].addr_spec == inbox.address
    body = mail.get_body(("plain",))
    assert body is not None and "[TL-1]" in body.get_content()
    assert _timeline_kinds(runtime, ids).count(ACKNOWLEDGED) == 1


@pytest.mark.parametrize("flag", ["auto-reply", "bounce", "list", "loop", "dmarc-fail"])
def test_automatic_mail_is_never_acknowledged(runtime: Runtime, smtp_sink: SmtpSink, flag: str) -> None:
    ids, job, _ = _email_ticket(runtime, flags=(flag,))
    assert _run(runtime, job) is RunResult.DONE
    time.sleep(0.2)
    assert smtp_sink.mails == []
    assert ACKNOWLEDGED not in _timeline_kinds(runtime, ids)


def test_an_inbox_without_acknowledgements_sends_none(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    ids, job, _ = _email_ticket(runtime, ack=False)
    assert _run(runtime, job) is RunResult.DONE
    time.sleep(0.2)
    assert smtp_sink.mails == []


def test_a_refused_acknowledgement_is_not_recorded_and_not_retried(runtime: Runtime, smtp_sink: SmtpSink) -> None:
    ids, job, _ = _email_ticket(runtime)
    smtp_sink.refuse_next(1, code=550, text="5.7.1 rejected")
    assert _run(runtime, job) is RunResult.DEAD
    assert ACKNOWLEDGED not in _timeline_kinds(runtime, ids)

