"""knowledge's registration: the `threadline kb` commands and the drafting job."""

from __future__ import annotations

from typing import Any

from core.registry import JobContext, Registry
from core.tickets.events import EventKind
from knowledge.cli import register_cli

DRAFT_JOB = "knowledge.draft"


def _draft(ctx: JobContext, payload: dict[str, Any]) -> None:
    from knowledge.draft_job import draft_job  # the embedding stack loads only in workers that draft

    draft_job(ctx, payload)


def register(registry: Registry) -> None:
    registry.add_cli(register_cli(registry))
    registry.add_job(DRAFT_JOB, _draft, queue="knowledge")
    registry.subscribe(EventKind.MESSAGE_APPENDED, DRAFT_JOB)
    registry.subscribe(EventKind.DRAFT_REQUESTED, DRAFT_JOB)
