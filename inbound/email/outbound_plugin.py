"""Registers the outbound email jobs (architecture §7) and email as the delivery of replies."""

from __future__ import annotations

from core.registry import Registry
from inbound.email.outbound import (
    ACKNOWLEDGE_JOB,
    COPY_JOB,
    DELIVER_JOB,
    deliver_copy,
    deliver_reply,
    send_acknowledgement,
)


def register(registry: Registry) -> None:
    registry.add_job(DELIVER_JOB, deliver_reply, queue="email")
    # Replies on email (and API-opened) tickets go out through this job: core/tickets/replies.py.
    registry.add_delivery("email", DELIVER_JOB)
    # A copy by mail of a reply another channel delivered (web chat: inbound/widget/delivery.py).
    registry.add_job(COPY_JOB, deliver_copy, queue="email")
    # Subscribed to ticket.opened by the inbound plugin; it checks the inbox's setting itself.
    registry.add_job(ACKNOWLEDGE_JOB, send_acknowledgement, queue="email")
