"""The widget's registration: its HTTP mount and the delivery of agent replies on web chat tickets."""

from __future__ import annotations

from typing import Any

from core.registry import Registry
from core.tickets.events import EventKind
from inbound.widget.api import mount
from inbound.widget.delivery import DELIVER_JOB, MIRROR_JOB, STATUS_JOB, deliver_reply, mirror_email, status_hint
from inbound.widget.erasure import erase_conversations


def register(registry: Registry) -> None:
    registry.add_http(mount)
    registry.add_cli(lambda app: _add_cli(app, registry))  # threadline widget set
    registry.add_job(DELIVER_JOB, deliver_reply, queue="widget")
    # core/tickets/replies.py routes public replies on Channel.WIDGET tickets to this job.
    registry.add_delivery("widget", DELIVER_JOB)
    # A customer's mail answer to an offline copy shows in the chat; status changes reach the socket.
    registry.add_job(MIRROR_JOB, mirror_email, queue="widget")
    registry.subscribe(EventKind.MESSAGE_APPENDED, MIRROR_JOB)
    registry.add_job(STATUS_JOB, status_hint, queue="widget")
    registry.subscribe(EventKind.STATUS_CHANGED, STATUS_JOB)
    registry.add_contact_eraser(erase_conversations)  # threadline contacts erase: their web chats too


def _add_cli(app: Any, registry: Registry) -> None:
    from inbound.widget.cli import add_commands  # typer loads only when the CLI is built

    add_commands(app, registry)
