"""`threadline tickets reply|note|draft` and `threadline drafts show|send`: an operator without a chat surface.

Each command calls the service Slack and the admin API call (core.tickets.operations, whose reply is
core.tickets.replies.send_public_reply; core.tickets.drafts.send for drafts), so a reply from the
shell is stored, held for the undo window and mailed by the same delivery job, and lands in the
ticket timeline and the admin audit log. The author is an existing agent (`--as EMAIL`): an
inactive or read-only agent is refused with exit code 2, as Slack refuses them.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cli.admin import cli_audit
from core.cli.context import command_runtime, fail
from core.cli.table import format_table
from core.cli.tenant import tenant_from_option
from core.db.session import tenant_scope
from core.errors import InvalidInput, ThreadlineError
from core.jobs.outbox import record_events
from core.registry import Registry
from core.runtime import Runtime
from core.tenancy import agents as agent_service
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import Agent, AgentRole
from core.tickets import drafts, operations, replies, service
from core.tickets.models import ActorKind, Channel, Draft, DraftState, Message, Ticket
from core.tickets.schemas import Actor

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="tenant slug (required when there are several)")]
AsOpt = Annotated[str, typer.Option("--as", metavar="EMAIL", help="the agent who writes (an active agent of the "
                                    "tenant, not read-only; see `threadline agents list`)")]
NumberArg = Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="the ticket number")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
FileOpt = Annotated[Path | None, typer.Option("--file", help="read the text from this file ('-' = stdin)",
                                              dir_okay=False)]
TextArg = Annotated[str | None, typer.Argument(help="the text; omitted: --file, or stdin when it is not a terminal")]

MAX_TEXT = 100_000  # the admin API's limit for a reply or note body


def read_text(text: str | None, file: Path | None) -> str:
    """The text from the argument, --file or stdin (one of them), stripped; empty is refused (exit 2)."""
    if text is not None and file is not None:
        raise fail("give the text as an argument or with --file, not both", code=2)
    if text is None and file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read {file}: {exc}", code=2) from None
    elif text is None:
        if sys.stdin.isatty():
            raise fail("no text: give it as an argument, with --file, or on stdin", code=2)
        text = sys.stdin.read()
    text = text.strip()
    if not text:
        raise fail("the text is empty", code=2)
    if len(text) > MAX_TEXT:
        raise fail(f"the text is {len(text)} characters; the limit is {MAX_TEXT}", code=2)
    return text


def acting_agent(session: Session, tenant_id: uuid.UUID, email: str) -> Agent:
    """The agent named by --as; a deactivated or read-only one may not write (InvalidInput → exit 2)."""
    try:
        agent = agent_service.agent_by_email(session=session, tenant_id=tenant_id, email=email)
    except ThreadlineError as exc:
        raise InvalidInput(f"{exc} in this tenant (see `threadline agents list`)") from None
    if not agent.active:
        raise InvalidInput(f"agent {agent.email} is deactivated: they cannot reply or write notes")
    if agent.role is AgentRole.READ_ONLY:
        raise InvalidInput(f"agent {agent.email} is read-only: they can view tickets but not reply or write notes")
    return agent


def agent_actor(agent: Agent) -> Actor:
    return Actor(ActorKind.AGENT, str(agent.id), agent.name)


def agent_audit(agent: Agent) -> AuditContext:
    """`cli:<os user> as <agent email>`: who typed the command and whom it speaks for."""
    return AuditContext(f"{cli_audit().actor} as {agent.email}")


@dataclass
class Unit:
    runtime: Runtime
    session: Session
    tenant_id: uuid.UUID


@contextmanager
def unit(registry: Registry, tenant_slug: str | None) -> Iterator[Unit]:
    """One tenant-scoped transaction; bad input exits 2, other refusals (no ticket, conflict) exit 1."""
    with command_runtime(registry) as rt:
        tenant_id = tenant_from_option(rt.factory, tenant_slug).id
        try:
            with tenant_scope(rt.factory, tenant_id) as session:
                yield Unit(rt, session, tenant_id)
        except InvalidInput as exc:
            raise fail(str(exc), code=2) from None
        except ThreadlineError as exc:
            raise fail(str(exc)) from None


def send_time(created_at: datetime, undo_seconds: float) -> datetime:
    return created_at + timedelta(seconds=undo_seconds)


def when_line(message: Message, undo_seconds: float, *, now: datetime | None = None) -> str:
    """When the delivery job will mail it: after the undo window, counted from the message's creation."""
    at = send_time(message.created_at, undo_seconds)
    left = max(0, round((at - (now or datetime.now(UTC))).total_seconds()))
    if left == 0:
        return "it is mailed now (no undo window)"
    return f"it is mailed at {at:%H:%M:%S} UTC (in {left} s, the undo window); a running `threadline up` sends it"


def message_json(message: Message, ticket: Ticket, undo_seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"ticket": ticket.number, "message_id": str(message.id),
                           "direction": message.direction.value, "author": message.author_name}
    if message.delivery_state is not None and message.direction.value == "outbound":
        out |= {"delivery_state": message.delivery_state.value,
                "send_at": send_time(message.created_at, undo_seconds).isoformat()}
    return out


def pending_draft(session: Session, ticket: Ticket) -> Draft | None:
    return session.execute(
        select(Draft).where(Draft.tenant_id == ticket.tenant_id, Draft.ticket_id == ticket.id,
                            Draft.state == DraftState.PENDING).order_by(Draft.created_at.desc()).limit(1)
    ).scalar_one_or_none()


def latest_draft(session: Session, ticket: Ticket) -> Draft | None:
    return session.execute(
        select(Draft).where(Draft.tenant_id == ticket.tenant_id, Draft.ticket_id == ticket.id)
        .order_by(Draft.created_at.desc()).limit(1)
    ).scalar_one_or_none()


def draft_json(draft: Draft, ticket: Ticket) -> dict[str, Any]:
    return {"ticket": ticket.number, "draft_id": str(draft.id), "state": draft.state.value,
            "confidence": round(draft.confidence, 3), "created_at": draft.created_at.isoformat(),
            "text": draft.text, "sources": list(draft.citations or [])}


def print_draft(d: dict[str, Any]) -> None:
    typer.echo(f"draft for #{d['ticket']} ({d['state']}, confidence {d['confidence']:.2f}, "
               f"{datetime.fromisoformat(d['created_at']):%Y-%m-%d %H:%M} UTC)\n")
    typer.echo(d["text"])
    typer.echo("")
    if d["sources"]:
        typer.echo(format_table(["SOURCE", "SECTION", "URL"], [
            [s.get("title") or s.get("source") or "-", s.get("heading") or "-", s.get("url") or s.get("source") or "-"]
            for s in d["sources"]]))
    else:
        typer.echo("no sources")


def _show_draft(registry: Registry, number: int, tenant: str | None, as_json: bool) -> None:
    with unit(registry, tenant) as u:
        ticket = service.get_ticket_by_number(session=u.session, number=number)
        draft = pending_draft(u.session, ticket) or latest_draft(u.session, ticket)
        shown = draft_json(draft, ticket) if draft else None
    if shown is None:
        raise fail(f"ticket #{number} has no draft (ask for one in Slack/Teams, or wait for the knowledge bot)")
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    print_draft(shown)
    if shown["state"] != DraftState.PENDING.value:
        typer.echo(f"\nthis draft is {shown['state']}: it cannot be sent")


def _send_draft(registry: Registry, number: int, email: str, tenant: str | None, as_json: bool) -> None:
    with unit(registry, tenant) as u:
        agent = acting_agent(u.session, u.tenant_id, email)
        ticket = service.get_ticket_by_number(session=u.session, number=number)
        draft = pending_draft(u.session, ticket)
        if draft is None:
            raise InvalidInput(f"ticket #{number} has no pending draft (see `threadline drafts show {number}`)")
        undo = u.runtime.settings.undo_seconds
        out = drafts.send(session=u.session, registry=u.runtime.registry, draft_id=draft.id, actor=agent_actor(agent),
                          agent_id=agent.id, edited_text=None, source=Channel.API, delay_seconds=undo)
        audit_log.record(session=u.session, tenant_id=u.tenant_id, audit=agent_audit(agent), action="draft.sent",
                         target=f"ticket:{ticket.number}", data={"draft_id": str(draft.id), "edited": False})
        record_events(session=u.session, registry=u.runtime.registry, events=out.events)
        u.session.flush()
        message = u.session.execute(
            select(Message).where(Message.ticket_id == ticket.id, Message.author_agent_id == agent.id)
            .order_by(Message.created_at.desc()).limit(1)
        ).scalar_one()
        result, when, name = message_json(message, ticket, undo), when_line(message, undo), agent.name
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"draft sent as {name}'s reply to #{number}: {when}")


def register(app: typer.Typer, tickets_app: typer.Typer, registry: Registry) -> None:
    @tickets_app.command("reply", help="Reply to the customer as an agent; mailed after the undo window, as from "
                         "Slack.",
                         epilog="Example: threadline tickets reply 12 --as ann@acme.test 'Fixed, please try again.'  "
                         "(or --file reply.txt, or pipe the text on stdin)")
    def reply(number: NumberArg, as_: AsOpt, text: TextArg = None, file: FileOpt = None,
              note: Annotated[bool, typer.Option("--note", help="an internal note instead: never mailed")] = False,
              tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
        body = read_text(text, file)
        _write(registry, number, body, as_, tenant, as_json, note=note)

    @tickets_app.command("note", help="Add an internal note as an agent (timeline and chat thread; never mailed).")
    def note(number: NumberArg, as_: AsOpt, text: TextArg = None, file: FileOpt = None,
             tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
        _write(registry, number, read_text(text, file), as_, tenant, as_json, note=True)

    @tickets_app.command("draft", help="Show the knowledge bot's draft for a ticket (same as `drafts show`).")
    def ticket_draft(number: NumberArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
        _show_draft(registry, number, tenant, as_json)

    drafts_app = typer.Typer(help="The knowledge bot's draft replies: read and send them without Slack.",
                             no_args_is_help=True)
    app.add_typer(drafts_app, name="drafts")

    @drafts_app.command("show", help="Show a ticket's pending draft: text, confidence and sources.")
    def show(number: NumberArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
        _show_draft(registry, number, tenant, as_json)

    @drafts_app.command("send", help="Send a ticket's pending draft as it is, as an agent's reply (undo window "
                        "honoured).")
    def send(number: NumberArg, as_: AsOpt, tenant: TenantOpt = None,
             as_json: JsonOpt = False) -> None:
        _send_draft(registry, number, as_, tenant, as_json)


def _write(registry: Registry, number: int, body: str, email: str, tenant: str | None, as_json: bool, *,
           note: bool) -> None:
    with unit(registry, tenant) as u:
        agent = acting_agent(u.session, u.tenant_id, email)
        ticket = service.get_ticket_by_number(session=u.session, number=number)
        undo = u.runtime.settings.undo_seconds
        if note:
            out = operations.add_note(session=u.session, ticket=ticket, text=body, actor=agent_actor(agent),
                                      audit=agent_audit(agent))
        else:  # Slack's call, with the agent as author; the audit entry as operations.reply writes it
            ticket = service.get_ticket(session=u.session, ticket_id=ticket.id, for_update=True)
            out = replies.send_public_reply(session=u.session, registry=u.runtime.registry, ticket=ticket, text=body,
                                            actor=agent_actor(agent), author_agent_id=agent.id, source=Channel.API,
                                            delay_seconds=undo)
            audit_log.record(session=u.session, tenant_id=u.tenant_id, audit=agent_audit(agent),
                             action="ticket.replied", target=f"ticket:{ticket.number}",
                             data={"message_id": str(out.value.id)})
        name = agent.name
        record_events(session=u.session, registry=u.runtime.registry, events=out.events)
        u.session.flush()
        result = message_json(out.value, ticket, undo)
        when = "" if note else when_line(out.value, undo)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif note:
        typer.echo(f"note added to #{number} by {name} (never mailed)")
    else:
        typer.echo(f"reply to #{number} by {name} queued: {when}")
