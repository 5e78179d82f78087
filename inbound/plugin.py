"""inbound's registration: ingest job, CLI, and the components `threadline up` runs."""

from __future__ import annotations

import signal
import threading
from typing import Any

from core.registry import Component, Registry
from inbound.ingest.accept import PROCESS_JOB
from inbound.ingest.cli import register_cli
from inbound.ingest.held_cli import register_held_cli
from inbound.ingest.raw_cli import register_raw_cli
from core.tickets.events import EventKind
from inbound.email.outbound_plugin import ACKNOWLEDGE_JOB
from inbound.email.outbound_plugin import register as register_outbound
from inbound.email.notify import EVENTS as NOTIFY_EVENTS
from inbound.email.notify import NOTIFY_JOB, notify_agents
from inbound.imap.plugin import register as register_imap
from inbound.ingest.jobs import make_process_job
from inbound.widget.plugin import register as register_widget


def register(registry: Registry) -> None:
    # Batched: a burst of mail costs one commit per mail, not three (core/jobs/runner.py).
    registry.add_job(PROCESS_JOB, make_process_job(registry), queue="ingest", batch=True)
    registry.add_cli(register_cli(registry))
    registry.add_cli(register_held_cli(registry))
    registry.add_cli(register_raw_cli(registry))
    register_imap(registry)
    register_outbound(registry)
    register_widget(registry)  # web chat: /widget/v1 and widget.deliver
    registry.subscribe(EventKind.TICKET_OPENED, ACKNOWLEDGE_JOB)
    # Agents by email (issue 16): notification mail per agent preferences.
    registry.add_job(NOTIFY_JOB, notify_agents, queue="email")
    for kind in NOTIFY_EVENTS:
        registry.subscribe(kind, NOTIFY_JOB)
    registry.add_component(
        Component(
            name="smtp",
            command=("smtp",),
            describe=lambda s: f"smtp://{s.smtp_host}:{s.smtp_port}  (max {s.max_message_bytes // 1048576} MiB)",
            order=30,
        )
    )

    def add_smtp(app: Any) -> None:
        @app.command("smtp", help="Run the SMTP server that receives customer mail (port THREADLINE_SMTP_PORT).")
        def smtp() -> None:
            from core.cli.context import command_runtime
            from inbound.smtp.server import serve_smtp

            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            with command_runtime(registry) as runtime:
                serve_smtp(runtime, stop=stop)

    registry.add_cli(add_smtp)
