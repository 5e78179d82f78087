"""The knowledge service: one `Knowledge` per process, built from settings and a session factory.

Reads run in their own short `tenant_scope` (RLS on); the draft writer runs after that
transaction ended, so a slow LLM never holds a database connection.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from core.settings import Settings
from knowledge.drafts import DraftProposal, DraftWriter, make_writer
from knowledge.embeddings import Embedder, make_embedder
from knowledge.ingest import IngestReport, Progress, UrlFor, delete_documents, ingest_files
from knowledge.models import KbDocument
from knowledge.retrieval import (
    EXACT_SCAN_MAX_CHUNKS,
    TEXT_CANDIDATES,
    VECTOR_CANDIDATES,
    Hit,
    SearchQuery,
    exact_scan_pays,
    fuse,
    one_pass_passages,
    text_passages,
    vector_passages,
    visible_chunks,
)

SIZE_TTL = 60.0


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
    exact_scan_max_chunks: int = EXACT_SCAN_MAX_CHUNKS  # above it: the HNSW index (see knowledge.retrieval)
    _executor: ThreadPoolExecutor | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sizes: dict[tuple[uuid.UUID, uuid.UUID | None, str], tuple[int, float]] = field(default_factory=dict, repr=False)

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
        """Hybrid search of one tenant's KB (tenant-wide documents plus the inbox's own, if given).

        A tenant of up to EXACT_SCAN_MAX_CHUNKS chunks is ranked both ways in one statement. A
        larger one uses the HNSW index and the full-text query, run side by side on two
        connections (each in its own read-only tenant_scope) and fused here.
        """
        k = top_k or self.top_k
        nv, nt = max(VECTOR_CANDIDATES, k), max(TEXT_CANDIDATES, k)
        with tenant_scope(self.factory, tenant_id) as session:
            size = self._size(session, tenant_id, inbox_id)
            if size == 0:  # no knowledge base here: nothing to find, and no query to embed (~150 ms of CPU)
                return []
            query = SearchQuery(question, self.embedder.embed_query(question), self.embedder.key, tenant_id, inbox_id)
            if exact_scan_pays(size, self.exact_scan_max_chunks):
                return fuse(*one_pass_passages(session=session, query=query, nv=nv, nt=nt), top_k=k)

        def half(fetch: Callable[..., list[Any]], **kwargs: Any) -> list[Any]:
            with tenant_scope(self.factory, tenant_id) as session:
                return fetch(session=session, query=query, **kwargs)

        text_future = self._pool().submit(half, text_passages, n=nt)
        vector_rows = half(vector_passages, n=nv, method="hnsw")
        return fuse(vector_rows, text_future.result(), top_k=k)

    def _size(self, session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None) -> int:
        """How many chunks a query can see, remembered for SIZE_TTL seconds: it only picks the
        faster path (both give the same answers), and counting costs about a millisecond. Zero is
        never remembered: it skips the search, and the first document uploaded must count at once."""
        key = (tenant_id, inbox_id, self.embedder.key)
        now = time.monotonic()
        cached = self._sizes.get(key)
        if cached is None or cached[0] == 0 or now - cached[1] > SIZE_TTL:
            cached = (visible_chunks(session, tenant_id=tenant_id, inbox_id=inbox_id, model_key=self.embedder.key), now)
            self._sizes[key] = cached
        return cached[0]

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kb-search")
            return self._executor

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
