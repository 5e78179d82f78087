"""Ignore only on evidence; whatever is held is listed and releasable; one mail cannot hold a worker."""

from __future__ import annotations

import json
from email import policy
from email.message import EmailMessage

from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow
from core.runtime import Runtime
from core.tickets import held
from core.tickets.models import RawInboundStatus
from tests.conftest import make_tenant
from tests.support.cli import Ran, run_cli
from tests.support.servers import RedisForTests
from tests.inbound.ingest.helpers import deliver, mail, messages, raw_records, tickets

LOOKALIKE = """Hi,

my parcel was not delivered again. Can you check?

Bob

On Mon, 30 Nov 2026 at 10:12, Acme Support <support@acme.example> wrote:
> Your parcel 123 is on its way.
"""


@pytest.fixture(autouse=True)
def inbox(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")


def test_a_customer_reply_that_reads_like_a_bounce_becomes_a_ticket_message(runtime: Runtime) -> None:
    result = deliver(runtime, mail(subject="Re: my parcel was not delivered", body=LOOKALIKE))
    assert result.status is RawInboundStatus.PROCESSED, result.outcome
    (message,) = messages(runtime)
    assert "possible-bounce" in message.flags
    assert "my parcel was not delivered again" in message.body_text


def test_a_text_bounce_that_names_our_message_is_still_a_bounce(runtime: Runtime) -> None:
    from core.tickets.models import DeliveryState, Direction, Message

    deliver(runtime, mail(message_id="<first@c.test>"))
    (ticket,) = tickets(runtime)
    with tenant_scope(runtime.factory, ticket.tenant_id) as session:
        session.add(Message(tenant_id=ticket.tenant_id, ticket_id=ticket.id, direction=Direction.OUTBOUND,
                            source="email", body_text="our answer", email_message_id="ours-1@acme.test",
                            delivery_state=DeliveryState.SENT))
    notice = ("This is the mail system at host mx.customer.test.\n\nI'm sorry to have to inform you that your "
              "message could not be delivered.\n\n<bob@customer.test>: host mx said: 550 5.1.1 User unknown\n")
    result = deliver(runtime, mail(subject="Undelivered Mail Returned to Sender", sender="robot@customer.test",
                                   body=notice, headers={"References": "<ours-1@acme.test>"}))
    assert result.status is RawInboundStatus.PROCESSED
    assert result.outcome.startswith("bounce: delivery to bob@customer.test failed")


def test_an_auto_reply_to_no_ticket_is_held_with_an_event_and_can_be_released(runtime: Runtime) -> None:
    oof = mail(subject="Out of office: back Monday", body="I am away.", headers={"Auto-Submitted": "auto-replied"})
    result = deliver(runtime, oof)
    assert result.status is RawInboundStatus.IGNORED
    (raw,) = raw_records(runtime)
    assert raw.held and raw.summary["subject"] == "Out of office: back Monday"
    with system_scope(runtime.factory) as session:
        jobs = [row.payload.get("event") for row in session.execute(select(OutboxRow)).scalars()]
    assert jobs == ["mail.held"] * len(jobs)
    with tenant_scope(runtime.factory, raw.tenant_id) as session:
        (item,) = held.list_held(session=session, tenant_id=raw.tenant_id)
        assert item.reason.startswith("auto-reply that answers no ticket")
        held.release(session=session, tenant_id=raw.tenant_id, raw_id=raw.id, released_by="ann")
    from core.blobs import BlobStore
    from inbound.ingest.pipeline import IngestDeps, process_raw

    deps = IngestDeps(runtime.settings, runtime.factory, runtime.registry, BlobStore.from_settings(runtime.settings))
    again = process_raw(deps, tenant_id=raw.tenant_id, raw_id=raw.id)
    assert (again.status, again.ticket_number) == (RawInboundStatus.PROCESSED, 1)
    (message,) = messages(runtime)
    assert "released" in message.flags
    with tenant_scope(runtime.factory, raw.tenant_id) as session:
        assert held.list_held(session=session, tenant_id=raw.tenant_id) == []


def test_releasing_twice_is_refused(runtime: Runtime) -> None:
    from core.errors import Conflict

    deliver(runtime, mail(subject="Automatic reply: away", headers={"Auto-Submitted": "auto-replied"}))
    (raw,) = raw_records(runtime)
    with tenant_scope(runtime.factory, raw.tenant_id) as session:
        held.release(session=session, tenant_id=raw.tenant_id, raw_id=raw.id, released_by="ann")
    with tenant_scope(runtime.factory, raw.tenant_id) as session, pytest.raises(Conflict, match="already released"):
        held.release(session=session, tenant_id=raw.tenant_id, raw_id=raw.id, released_by="bo")


def test_a_duplicate_is_not_held(runtime: Runtime) -> None:
    raw = mail(message_id="<same@c.test>")
    deliver(runtime, raw)
    second = raw.replace(b"Subject:", b"Received: from relay2\r\nSubject:", 1)
    assert deliver(runtime, second).outcome.startswith("duplicate")
    assert [r.held for r in raw_records(runtime)] == [False, False]


def _big_mail(megabytes: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bob@customer.test", "help@acme.test", "logs"
    msg.set_content("see attached")
    for i in range(megabytes):
        msg.add_attachment(bytes(range(256)) * 4096, maintype="application", subtype="octet-stream",
                           filename=f"log{i}.bin")
    return msg.as_bytes(policy=policy.SMTP)


def test_a_mail_over_the_processing_budget_is_failed_and_the_next_one_goes_through(runtime: Runtime) -> None:
    runtime.settings.mail_budget_seconds = 0.2  # 20 MB of base64 takes seconds to decode
    result = deliver(runtime, _big_mail(20))
    assert result.status is RawInboundStatus.FAILED
    assert "processing budget exceeded" in result.outcome
    (raw,) = raw_records(runtime)
    assert raw.status is RawInboundStatus.FAILED and raw.error.startswith("processing budget exceeded")
    runtime.settings.mail_budget_seconds = 30
    assert deliver(runtime, mail()).status is RawInboundStatus.PROCESSED


def test_a_child_over_its_memory_budget_fails_the_mail_cleanly(runtime: Runtime) -> None:
    runtime.settings.mail_budget_memory_mb = 64  # a 20 MB mail needs several copies of itself
    result = deliver(runtime, _big_mail(20))
    assert result.status is RawInboundStatus.FAILED
    assert "memory" in result.outcome
    runtime.settings.mail_budget_memory_mb = 1024
    assert deliver(runtime, mail()).status is RawInboundStatus.PROCESSED


def test_held_cli_lists_and_releases(runtime: Runtime, redis_server: RedisForTests, tmp_path: Path) -> None:
    deliver(runtime, mail(subject="Auto: away", headers={"Auto-Submitted": "auto-generated"}))
    (raw,) = raw_records(runtime)
    env = {"DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url, "THREADLINE_DATA_DIR": str(tmp_path)}

    def cli(*args: str) -> Ran:
        return run_cli(*args, env=env)

    listed = cli("held", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["raw_id"], row["subject"]) == (str(raw.id), "Auto: away")
    released = cli("held", "release", str(raw.id), "--by", "ops")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout.splitlines()[-1])["ticket_number"] == 1
    again = cli("held", "release", str(raw.id))
    assert again.returncode == 1 and "already released by ops" in again.stdout
