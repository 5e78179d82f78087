"""The job that processes an accepted raw message (queued in the same transaction as the bytes)."""

from __future__ import annotations

import uuid
from typing import Any

from core.blobs import BlobStore
from core.registry import JobContext, Registry
from inbound.ingest.pipeline import IngestDeps, process_raw


def make_process_job(registry: Registry):  # type: ignore[no-untyped-def]
    def process(ctx: JobContext, payload: dict[str, Any]) -> None:
        deps = IngestDeps(ctx.settings, ctx.session_factory, registry, BlobStore.from_settings(ctx.settings))
        process_raw(deps, tenant_id=ctx.tenant_id, raw_id=uuid.UUID(payload["raw_id"]))

    return process
