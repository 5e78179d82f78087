"""The widget's registration: its HTTP mount and the delivery of agent replies on web chat tickets."""

from __future__ import annotations

from core.registry import Registry
from inbound.widget.api import mount
from inbound.widget.delivery import DELIVER_JOB, deliver_reply


def register(registry: Registry) -> None:
    registry.add_http(mount)
    registry.add_job(DELIVER_JOB, deliver_reply, queue="widget")
    # core/tickets/replies.py routes public replies on Channel.WIDGET tickets to this job.
    registry.add_delivery("widget", DELIVER_JOB)
