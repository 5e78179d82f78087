"""Teams' registration: its jobs and the events they follow, the HTTP endpoint, the CLI."""

from __future__ import annotations

from typing import Any

from core.registry import Registry
from core.tickets.events import EventKind


def register_teams(registry: Registry) -> None:
    from bots.teams import app, draft_tasks, held, inbound, tasks
    from bots.teams.http import mount_teams

    registry.add_job(inbound.ACTIVITY_JOB, app.activity_job, queue="teams")
    registry.add_job(inbound.INVOKE_JOB, app.invoke_job, queue="teams")

    wanted = tasks.teams_configured
    registry.add_job(tasks.SYNC_JOB, tasks.sync_thread, queue="teams", wanted=wanted)
    registry.add_job(tasks.CARD_JOB, tasks.update_card, queue="teams", wanted=wanted)
    registry.add_job(tasks.DELIVERY_JOB, tasks.delivery_notice, queue="teams", wanted=wanted)
    registry.add_job(draft_tasks.DRAFT_CARD_JOB, draft_tasks.draft_card, queue="teams", wanted=wanted)
    registry.subscribe(EventKind.TICKET_OPENED, tasks.SYNC_JOB)
    registry.subscribe(EventKind.MESSAGE_APPENDED, tasks.SYNC_JOB)
    for kind in (EventKind.STATUS_CHANGED, EventKind.PRIORITY_CHANGED, EventKind.ASSIGNEE_CHANGED):
        registry.subscribe(kind, tasks.CARD_JOB)
    registry.subscribe(EventKind.DELIVERY_CHANGED, tasks.DELIVERY_JOB)
    registry.subscribe(EventKind.DRAFT_CHANGED, draft_tasks.DRAFT_CARD_JOB)
    registry.add_job(held.HELD_JOB, held.post_held, queue="teams", wanted=wanted)
    registry.subscribe(EventKind.MAIL_HELD, held.HELD_JOB)
    registry.add_http(mount_teams)

    def add_cli(app: Any) -> None:
        from bots.teams.cli import add_teams_cli

        add_teams_cli(app, registry)

    registry.add_cli(add_cli)
