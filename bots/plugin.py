"""bots' registration: Slack jobs and their events, the HTTP endpoints, Socket Mode."""

from __future__ import annotations

import signal
import threading
from typing import Any

from core.registry import Component, Registry
from core.tickets.events import EventKind


def register(registry: Registry) -> None:
    from bots.slack import draft_tasks, files, held, tasks
    from bots.slack.http import mount_slack
    from bots.slack.installations import slack_configured as wanted

    registry.add_job(tasks.SYNC_JOB, tasks.sync_thread, queue="slack", wanted=wanted)
    registry.add_job(tasks.CARD_JOB, tasks.update_card, queue="slack", wanted=wanted)
    registry.add_job(tasks.DELIVERY_JOB, tasks.delivery_notice, queue="slack", wanted=wanted)
    registry.add_job(tasks.REACT_JOB, tasks.react, queue="slack")
    registry.add_job(files.FETCH_JOB, files.fetch_files, queue="slack")
    registry.add_job(draft_tasks.DRAFT_CARD_JOB, draft_tasks.draft_card, queue="slack", wanted=wanted)
    registry.subscribe(EventKind.DRAFT_CHANGED, draft_tasks.DRAFT_CARD_JOB)
    registry.add_job(held.HELD_JOB, held.post_held, queue="slack", wanted=wanted)
    registry.subscribe(EventKind.MAIL_HELD, held.HELD_JOB)
    registry.subscribe(EventKind.TICKET_OPENED, tasks.SYNC_JOB)
    registry.subscribe(EventKind.MESSAGE_APPENDED, tasks.SYNC_JOB)
    for kind in (EventKind.STATUS_CHANGED, EventKind.PRIORITY_CHANGED, EventKind.ASSIGNEE_CHANGED):
        registry.subscribe(kind, tasks.CARD_JOB)
    registry.subscribe(EventKind.DELIVERY_CHANGED, tasks.DELIVERY_JOB)
    registry.add_http(mount_slack)
    from bots.teams.plugin import register_teams

    register_teams(registry)
    registry.add_component(Component(
        name="slack-socket", command=("slack-socket",), describe=lambda s: "Slack Socket Mode (SLACK_APP_TOKEN)",
        enabled=lambda s: s.slack_app_token is not None and s.slack_bot_token is not None, order=60,
    ))

    def add_cli(app: Any) -> None:
        @app.command("slack-socket", help="Connect to Slack over Socket Mode (needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN).")
        def slack_socket() -> None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            from bots.slack.app import build_slack_app
            from bots.surface.deps import SurfaceDeps
            from core.cli.context import command_runtime, fail

            with command_runtime(registry) as rt:
                if rt.settings.slack_app_token is None:
                    raise fail("SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-...)")
                bolt, _ = build_slack_app(SurfaceDeps(rt.settings, rt.factory, rt.registry), socket_mode=True)
                handler = SocketModeHandler(bolt, rt.settings.slack_app_token.get_secret_value())
                stop = threading.Event()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())
                handler.connect()
                stop.wait()
                handler.close()

    registry.add_cli(add_cli)

    def add_slack_cli(app: Any) -> None:
        from bots.slack.cli import add_slack_cli as add

        add(app, registry)

    registry.add_cli(add_slack_cli)

