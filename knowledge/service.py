"""The knowledge service: one `Knowledge` per process, built from settings and a session factory.

Reads run in their own short `tenant_scope` (RLS on); the draft writer runs after that
transaction ended, so a slow LLM never holds a database connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from core.settings import Settings
from knowledge.drafts import DraftProposal, DraftWriter, make_writer
from knowledge.embeddings import Embedder, make_embedder
from knowledge.ingest import IngestReport, Progress, UrlFor, delete_documents, ingest_files
from knowledge.models import KbDocument
from knowledge.retrieval import Hit, SearchQuery, hybrid_search


@dataclass(frozen=True)
class DocumentInfo:
    id: uuid.UUID
    source: str
    title: str
    inbox_id: uuid.UUID | None
    chunks: int
    embedding_model: str
    updated_at: str


@dataclass(frozen=True)
class Answer:
    """What retrieval found for a question and the draft (None when nothing was confident)."""

    question: str
    hits: list[Hit]
    confidence: float  # best similarity among the hits (0 when there were none)
    draft: DraftProposal | None


@dataclass
class Knowledge:
    factory: sessionmaker[Session]
    embedder: Embedder
    writer: DraftWriter
    threshold: float
    top_k: int = 5

    @classmethod
    def from_settings(cls, settings: Settings, factory: sessionmaker[Session]) -> Knowledge:
        """Cheap: models load on first use (the local embedding model in about 0.3 s)."""
        return cls(
            factory=factory,
            embedder=make_embedder(settings.embedding),
            writer=make_writer(settings.llm),
            threshold=settings.kb_min_confidence,
        )

    # ------------------------------------------------------------------ retrieval and drafts

    def search(
        self, question: str, *, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None = None, top_k: int | None = None
    ) -> list[Hit]:
        """Hybrid search of one tenant's KB (tenant-wide documents plus the inbox's own, if given)."""
        query = SearchQuery(question, self.embedder.embed_query(question), self.embedder.key, tenant_id, inbox_id)
        with tenant_scope(self.factory, tenant_id) as session:
            return hybrid_search(session=session, query=query, top_k=top_k or self.top_k)

    def answer(self, question: str, *, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None = None) -> Answer:
        hits = self.search(question, tenant_id=tenant_id, inbox_id=inbox_id)
        draft = self.writer.write(question, hits, threshold=self.threshold)
        return Answer(question, hits, max((h.similarity for h in hits), default=0.0), draft)

    def draft_for(
        self, question: str, *, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None = None
    ) -> DraftProposal | None:
        """A draft reply citing the passages it used, or None when no passage reaches the threshold."""
        return self.answer(question, tenant_id=tenant_id, inbox_id=inbox_id).draft

    # ------------------------------------------------------------------ maintenance

    def ingest(
        self, files: Sequence[Path], *, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None = None,
        url_for: UrlFor | None = None, on_file: Progress | None = None,
    ) -> IngestReport:
        return ingest_files(files, factory=self.factory, embedder=self.embedder, tenant_id=tenant_id,
                            inbox_id=inbox_id, url_for=url_for, on_file=on_file)

    def delete(
        self, *, tenant_id: uuid.UUID, sources: Sequence[str] = (), ids: Sequence[uuid.UUID] = ()
    ) -> list[str]:
        with tenant_scope(self.factory, tenant_id) as session:
            return delete_documents(session=session, tenant_id=tenant_id, sources=sources, ids=ids)

    def documents(self, *, tenant_id: uuid.UUID) -> list[DocumentInfo]:
        with tenant_scope(self.factory, tenant_id) as session:
            rows = session.execute(
                select(KbDocument).where(KbDocument.tenant_id == tenant_id).order_by(KbDocument.source)
            ).scalars().all()
            return [
                DocumentInfo(d.id, d.source, d.title, d.inbox_id, d.chunk_count, d.embedding_model,
                             d.updated_at.isoformat(timespec="seconds"))
                for d in rows
            ]
