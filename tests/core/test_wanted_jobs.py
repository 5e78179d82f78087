"""Events fan out only to the jobs that can do something under the settings: without a Slack or
Teams bot no row is written for them (each would be claimed, run and finished for nothing)."""

from __future__ import annotations

from collections import Counter

from pydantic import SecretStr
from sqlalchemy import select

from core.crypto import SecretBox
from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow
from core.registry import Registry, load_plugins
from core.runtime import Runtime
from core.settings import Settings
from core.tenancy.audit import AuditContext
from core.tickets.events import EventKind
from core.webhooks.service import create_subscription
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail


def _surfaces(jobs: list[str] | tuple[str, ...]) -> set[str]:
    return {job.split(".")[0] for job in jobs if job.startswith(("slack.", "teams."))}


def test_a_bare_registry_fans_out_to_every_subscribed_job() -> None:
    assert _surfaces(tuple(load_plugins(Registry()).jobs_for(EventKind.MESSAGE_APPENDED))) == {"slack", "teams"}


def test_surface_jobs_are_wanted_only_when_that_surface_is_configured() -> None:
    settings = Settings()
    registry = load_plugins(Registry()).bind(settings)
    assert _surfaces(list(registry.jobs_for(EventKind.MESSAGE_APPENDED))) == set()
    assert "knowledge.draft" in registry.jobs_for(EventKind.MESSAGE_APPENDED)  # unconditional jobs stay
    settings.slack_bot_token = SecretStr("xoxb-1")  # read at each fan-out, not when bound
    assert _surfaces(list(registry.jobs_for(EventKind.MESSAGE_APPENDED))) == {"slack"}
    settings.slack_bot_token = None
    settings.slack_client_id, settings.slack_client_secret = "1.2", SecretStr("s")  # installs over OAuth
    assert _surfaces(list(registry.jobs_for(EventKind.TICKET_OPENED))) == {"slack"}
    settings.teams_app_id, settings.teams_app_password = "app", SecretStr("pw")
    assert _surfaces(list(registry.jobs_for(EventKind.MAIL_HELD))) == {"slack", "teams"}


def test_a_mail_without_any_chat_surface_writes_no_surface_rows(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")
    deliver(runtime, mail())
    with system_scope(runtime.factory) as session:
        jobs = Counter(session.execute(select(OutboxRow.job)).scalars())
    assert not _surfaces(list(jobs)), jobs
    assert jobs["email.notify_agents"] >= 1  # the mail did fan out, to the jobs that apply
    runtime.settings.teams_app_id, runtime.settings.teams_app_password = "app", SecretStr("pw")
    deliver(runtime, mail(subject="Second"))
    with system_scope(runtime.factory) as session:
        jobs = Counter(session.execute(select(OutboxRow.job)).scalars())
    assert _surfaces(list(jobs)) == {"teams"}


def test_webhook_rows_only_for_a_tenant_with_a_receiver_of_that_kind(runtime: Runtime) -> None:
    tenant, _ = make_tenant(runtime, address="help@acme.test")
    deliver(runtime, mail())
    assert _jobs(runtime)["webhooks.deliver"] == 0
    with tenant_scope(runtime.factory, tenant.id) as session:
        create_subscription(session=session, tenant_id=tenant.id, url="https://hooks.example.com/x",
                            events=["ticket.opened"], box=SecretBox.from_settings(runtime.settings),
                            allow_private=False, audit=AuditContext("test"))
    deliver(runtime, mail(subject="Second"))
    webhook_events = {row.payload["event"] for row in _rows(runtime, "webhooks.deliver")}
    assert webhook_events == {"ticket.opened"}  # message.appended has no receiver


def test_web_chat_jobs_are_not_written_for_a_mail_ticket(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")
    deliver(runtime, mail())
    jobs = _jobs(runtime)
    assert (jobs["widget.mirror"], jobs["email.notify_agents"] > 0) == (0, True)


def _rows(runtime: Runtime, job: str) -> list[OutboxRow]:
    with system_scope(runtime.factory) as session:
        return list(session.execute(select(OutboxRow).where(OutboxRow.job == job)).scalars())


def _jobs(runtime: Runtime) -> Counter[str]:
    with system_scope(runtime.factory) as session:
        return Counter(session.execute(select(OutboxRow.job)).scalars())
