"""inbound's registration: ingest job, CLI, and the components `threadline up` runs."""

from __future__ import annotations

from core.registry import Registry
from inbound.ingest.accept import PROCESS_JOB
from inbound.ingest.cli import register_cli
from inbound.ingest.jobs import make_process_job


def register(registry: Registry) -> None:
    registry.add_job(PROCESS_JOB, make_process_job(registry), queue="ingest")
    registry.add_cli(register_cli(registry))
