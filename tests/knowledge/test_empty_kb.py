"""A tenant with no knowledge base: the draft job's search finds nothing without embedding the
question (about 150 ms of CPU per customer message), and the first document counts at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.runtime import Runtime
from knowledge.drafts import ExtractiveWriter
from knowledge.embeddings import LocalMiniLM
from knowledge.service import Knowledge
from tests.knowledge.conftest import THRESHOLD, new_tenant


@dataclass
class CountingEmbedder:
    """The real model, counting the questions it is asked to embed."""

    inner: LocalMiniLM
    queries: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.inner.key

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return self.inner.embed_query(text)


def test_no_documents_no_embedding_and_the_first_document_is_found_at_once(
    kb_runtime: Runtime, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    counting = CountingEmbedder(embedder)
    knowledge = Knowledge(factory=kb_runtime.factory, embedder=counting, writer=ExtractiveWriter(), threshold=THRESHOLD)
    tenant, _ = new_tenant(kb_runtime)
    answer = knowledge.answer("How do I restore a single file?", tenant_id=tenant)
    assert (answer.hits, answer.draft, counting.queries) == ([], None, [])
    doc = tmp_path / "restore.md"
    doc.write_text("# Restoring a file\n\nRun `restic restore latest --target /tmp/r --include /home/me/file`"
                   " to restore a single file from the latest snapshot.\n")
    knowledge.ingest([doc], tenant_id=tenant)
    hits = knowledge.search("How do I restore a single file?", tenant_id=tenant)  # within the size cache's TTL
    assert ([h.source for h in hits][:1], len(counting.queries)) == ([str(doc)], 1)
