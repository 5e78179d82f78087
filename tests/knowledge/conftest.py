"""Knowledge fixtures: the local model loaded once, and one database with the restic docs ingested once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.db.migrate import upgrade
from core.db.session import system_scope
from core.registry import Registry
from core.runtime import Runtime, build_runtime
from core.settings import Settings
from core.tenancy.service import create_inbox, create_tenant
from knowledge.drafts import ExtractiveWriter
from knowledge.embeddings import LocalMiniLM
from knowledge.ingest import IngestReport, discover
from knowledge.service import Knowledge
from tests.support.servers import PostgresForTests

RESTIC_DOCS = Path(__file__).resolve().parents[3] / "shared" / "kb" / "restic-docs"
EVAL_SET = Path(__file__).resolve().parents[2] / "bench" / "kb_eval_restic.jsonl"
THRESHOLD = Settings().kb_min_confidence


RESTIC_GROUP = "restic_kb"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of the ingested restic docs runs in one xdist worker (`--dist loadgroup`, scripts/test),
    so the ingest (about a minute of embedding on a loaded CI machine) happens once per run, not
    once per worker."""
    for item in items:
        if "restic_kb" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(RESTIC_GROUP))


@pytest.fixture(scope="session", autouse=True)
def _offline() -> None:
    # The default model must never reach for a model hub; make any attempt fail loudly.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def embedder() -> LocalMiniLM:
    return LocalMiniLM().load()


@pytest.fixture(scope="session")
def kb_runtime(pg: PostgresForTests) -> Iterator[Runtime]:
    """A database of its own: the shared one is truncated before every test."""
    url = pg.create_database("tl_kb")
    rt = build_runtime(Settings(), database_url=url, redis_url=None, registry=Registry(), pool_size=4)
    upgrade(rt.engine)
    yield rt
    rt.close()


def new_tenant(rt: Runtime, *, inboxes: int = 0) -> tuple[uuid.UUID, list[uuid.UUID]]:
    with system_scope(rt.factory) as session:
        tenant = create_tenant(session=session, name=f"KB {uuid.uuid4().hex[:6]}")
        ids = [create_inbox(session=session, tenant_id=tenant.id, address=f"kb-{uuid.uuid4().hex[:8]}@example.test").id
               for _ in range(inboxes)]
        return tenant.id, ids


def knowledge_for(rt: Runtime, embedder: LocalMiniLM) -> Knowledge:
    return Knowledge(factory=rt.factory, embedder=embedder, writer=ExtractiveWriter(), threshold=THRESHOLD)


@dataclass(frozen=True)
class ResticKb:
    rt: Runtime
    knowledge: Knowledge
    tenant_id: uuid.UUID
    report: IngestReport


@pytest.fixture(scope="session")
def restic_kb(kb_runtime: Runtime, embedder: LocalMiniLM) -> ResticKb:
    """The restic user documentation ingested once for one tenant (about 540 chunks)."""
    if not RESTIC_DOCS.is_dir():
        pytest.skip(f"{RESTIC_DOCS} is not there (shared/ sits beside the repository)")
    tenant_id, _ = new_tenant(kb_runtime)
    knowledge = knowledge_for(kb_runtime, embedder)
    files, refused = discover([RESTIC_DOCS])
    assert refused == []
    report = knowledge.ingest(files, tenant_id=tenant_id)
    print(f"\nrestic docs: {report.summary()} ({report.chunks_written / report.seconds:.1f} chunks/s)")
    return ResticKb(kb_runtime, knowledge, tenant_id, report)
