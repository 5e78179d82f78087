"""An operator without Slack: `tickets reply|note`, `drafts show|send`, `jobs list`, `agents notify`.

The real command tree runs against the test database with the settings from its environment; the
delivery job then runs through the real runner (tests/support/jobs.py) and mails to the SMTP sink.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from core.cli.main import build_cli
from core.db.session import system_scope, tenant_scope
from core.registry import Registry, load_plugins
from core.runtime import Runtime
from core.tenancy.audit import SYSTEM
from core.tenancy.models import Agent, AgentRole, Inbox
from core.tenancy.service import bootstrap, create_agent
from core.tickets import drafts, service
from core.tickets.models import Channel, Direction, Ticket
from core.tickets.schemas import SYSTEM_ACTOR, NewMessage
from tests.support.jobs import drain_jobs
from tests.support.servers import RedisForTests
from tests.support.smtp_sink import SmtpSink, smtp_sink  # noqa: F401 (fixture)


def _open_ticket(runtime: Runtime) -> None:
    """Ticket #1 from bob@c.test, as the mail pipeline stores a customer's first mail."""
    with system_scope(runtime.factory) as session:
        tenant_id, inbox_id = session.execute(select(Inbox.tenant_id, Inbox.id)).one()
    with tenant_scope(runtime.factory, tenant_id) as session:
        contact = service.find_or_create_contact(session=session, tenant_id=tenant_id, email="bob@c.test", name="Bob")
        service.open_ticket(
            session=session, tenant_id=tenant_id, inbox_id=inbox_id, subject="Backup fails", channel=Channel.EMAIL,
            contact_id=contact.id, actor=SYSTEM_ACTOR, first_message=NewMessage(
                direction=Direction.INBOUND, source=Channel.EMAIL, body_text="My backup fails: 'repository locked'.",
                author_contact_id=contact.id, author_name="Bob", email_message_id="first@c.test"))


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _cli(*args: str, env: dict[str, str], stdin: str | None = None) -> Ran:
    """The real command tree in this process (a subprocess per call costs seconds of imports)."""
    app = build_cli(load_plugins(Registry()))
    result = CliRunner().invoke(app, list(args), env=env, input=stdin, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture()
def env(runtime: Runtime, redis_server: RedisForTests, tmp_path: Path,
        smtp_sink: SmtpSink) -> Iterator[dict[str, str]]:  # noqa: F811
    runtime.settings.outbound_smtp_url = SecretStr(smtp_sink.url)
    env = {"DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url,
           "THREADLINE_DATA_DIR": str(tmp_path), "THREADLINE_SUPPORT_ADDRESS": "help@acme.test",
           "THREADLINE_UNDO_SECONDS": "30"}
    with system_scope(runtime.factory) as session:  # set-up through the services
        tenant_id = bootstrap(session=session, support_address="help@acme.test", slack_channel=None).tenant.id
        for email, role in (("ann@acme.test", AgentRole.AGENT), ("rita@acme.test", AgentRole.READ_ONLY),
                            ("old@acme.test", AgentRole.AGENT)):
            create_agent(session=session, tenant_id=tenant_id, name=email.split("@")[0].title(), email=email,
                         role=role, audit=SYSTEM)
        session.execute(update(Agent).where(Agent.email == "old@acme.test").values(active=False))
    _open_ticket(runtime)
    yield env


def test_reply_mails_the_customer_once_with_threading_headers_and_a_note_mails_nothing(
    env: dict[str, str], runtime: Runtime, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    note = _cli("tickets", "note", "1", "--as", "ann@acme.test", "checked the lock: stale", env=env)
    reply = _cli("tickets", "reply", "1", "--as", "ann@acme.test", "--file", "-", env=env,
                 stdin="Run `restic unlock`, then try again.\n")
    assert (note.returncode, reply.returncode) == (0, 0), note.stderr + reply.stderr
    assert "never mailed" in note.stdout and re.search(r"\(in (29|30) s, the undo window\)", reply.stdout)
    assert drain_jobs(runtime) is not None and smtp_sink.mails == []  # inside the undo window: nothing yet
    drain_jobs(runtime, include_delayed=True)
    (sent,) = smtp_sink.wait_for(1)
    mail = sent.message
    assert sent.rcpt_tos == ("bob@c.test",)
    assert (mail["In-Reply-To"], "<first@c.test>" in mail["References"]) == ("<first@c.test>", True)
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and "restic unlock" in body.get_content() and "stale" not in body.get_content()
    shown = json.loads(_cli("tickets", "show", "1", "--json", env=env).stdout)
    assert [(m["direction"], m["author_name"]) for m in shown["messages"]] == [
        ("inbound", "Bob"), ("note", "Ann"), ("outbound", "Ann")]
    with system_scope(runtime.factory) as session:
        audit = session.execute(text("SELECT actor, action FROM audit_log WHERE action LIKE 'ticket.%' "
                                     "ORDER BY created_at")).all()
    assert [a.action for a in audit] == ["ticket.note_added", "ticket.replied"]
    assert all(a.actor.endswith(" as ann@acme.test") for a in audit)


def test_read_only_inactive_and_unknown_agents_are_refused_with_exit_2(
    env: dict[str, str], runtime: Runtime, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    results = {who: _cli("tickets", "reply", "1", "--as", who, "hello", env=env)
               for who in ("rita@acme.test", "old@acme.test", "nobody@acme.test")}
    empty = _cli("tickets", "reply", "1", "--as", "ann@acme.test", "   ", env=env)
    assert {who: r.returncode for who, r in results.items()} == dict.fromkeys(results, 2)
    assert "read-only" in results["rita@acme.test"].stderr and "deactivated" in results["old@acme.test"].stderr
    assert "no agent with email nobody@acme.test" in results["nobody@acme.test"].stderr
    assert (empty.returncode, "empty" in empty.stderr) == (2, True)
    drain_jobs(runtime, include_delayed=True)
    assert smtp_sink.mails == []


def test_drafts_show_prints_the_draft_and_send_mails_it(
    env: dict[str, str], runtime: Runtime, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    assert _cli("drafts", "send", "1", "--as", "ann@acme.test", env=env).returncode == 2  # no draft yet
    with system_scope(runtime.factory) as session:
        tenant_id = session.execute(select(Ticket.tenant_id)).scalar_one()
    with tenant_scope(runtime.factory, tenant_id) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        drafts.propose(session=session, ticket=ticket, for_message_id=None, text="Run restic unlock.",
                       citations=[{"title": "Troubleshooting", "source": "/kb/080.rst", "heading": "Locks",
                                   "url": None}], confidence=0.8123, answered=True)
    shown = _cli("drafts", "show", "1", env=env)
    as_json = json.loads(_cli("tickets", "draft", "1", "--json", env=env).stdout)
    assert shown.returncode == 0 and "Run restic unlock." in shown.stdout and "confidence 0.81" in shown.stdout
    assert shown.stdout.splitlines()[-2].split() == ["SOURCE", "SECTION", "URL"]
    assert (as_json["state"], as_json["sources"][0]["heading"]) == ("pending", "Locks")
    sent = _cli("drafts", "send", "1", "--as", "ann@acme.test", env=env)
    assert sent.returncode == 0 and "undo window" in sent.stdout, sent.stderr
    drain_jobs(runtime, include_delayed=True)
    (mail,) = smtp_sink.wait_for(1)
    assert mail.message["In-Reply-To"] == "<first@c.test>"
    again = _cli("drafts", "send", "1", "--as", "ann@acme.test", env=env)
    assert (again.returncode, "no pending draft" in again.stderr) == (2, True)


def test_jobs_list_prints_a_header_row_and_json(env: dict[str, str]) -> None:
    assert _cli("tickets", "note", "1", "--as", "ann@acme.test", "a note's events make jobs", env=env).returncode == 0
    listed = _cli("jobs", "list", "--status", "done", env=env)
    as_json = json.loads(_cli("jobs", "list", "--status", "pending", "--json", env=env).stdout)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[-1] == "0 job(s) done"
    assert as_json and {"id", "job", "status", "attempts", "error", "created_at"} <= set(as_json[0])
    pending = _cli("jobs", "list", "--status", "pending", env=env).stdout.splitlines()
    assert pending[0].split() == ["ID", "JOB", "STATUS", "ATTEMPTS", "CREATED", "ERROR"]
    assert len(pending) == len(as_json) + 2


def test_agents_notify_changes_preferences_through_the_api_service(env: dict[str, str]) -> None:
    changed = _cli("agents", "notify", "ann@acme.test", "--on", "new,assigned", "--off", "drafts", "--json", env=env)
    bad = _cli("agents", "notify", "ann@acme.test", "--on", "sms", env=env)
    assert json.loads(changed.stdout) == {"new_tickets": True, "assigned": True, "customer_replies": True,
                                          "drafts": False}
    assert (bad.returncode, "unknown notification 'sms'" in bad.stderr) == (2, True)
