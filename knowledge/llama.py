"""LlamaIndex interfaces over our own tables: a vector store, a retriever and an embedding model.

Why our own store and not LlamaIndex's PGVectorStore: PGVectorStore owns its table (`data_<name>`,
JSONB metadata, no tenant_id column, no alembic migration), so tenant isolation would be a
metadata filter a caller can forget, RLS could not be applied, and hybrid search would be its
own sparse query with psycopg quirks (`SET hnsw.ef_search = $1` fails under psycopg 3). Our
tables carry tenant_id with forced RLS, and every query runs inside `tenant_scope`. This module
puts LlamaIndex's interfaces on top, so LlamaIndex pipelines (VectorStoreIndex, retrievers,
query engines, LLM classes) use the same data. Importing it imports llama_index.core (~1.5 s):
only LLM draft writers and integrations need it; ingest and search do not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from knowledge.chunking import CHUNKER_VERSION
from knowledge.embeddings import Embedder
from knowledge.models import KbChunk, KbDocument
from knowledge.retrieval import (
    TEXT_CANDIDATES,
    Hit,
    SearchQuery,
    hybrid_search,
    text_candidates,
    vector_candidates,
)


def hit_node(hit: Hit) -> TextNode:
    return TextNode(
        id_=str(hit.chunk_id),
        text=hit.text,
        metadata={"source": hit.source, "title": hit.title, "heading": hit.heading, "url": hit.url},
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.source)},
    )


class EmbedderAdapter(BaseEmbedding):
    """Any of our embedders (the offline local model by default) as a LlamaIndex embedding model."""

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.key, **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed_query(query)]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed_documents(texts)]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class TenantVectorStore(BasePydanticVectorStore):
    """One tenant's KB as a LlamaIndex vector store (default, text_search and hybrid modes)."""

    stores_text: bool = True
    _factory: sessionmaker[Session] = PrivateAttr()
    _tenant_id: uuid.UUID = PrivateAttr()
    _model_key: str = PrivateAttr()

    def __init__(self, *, factory: sessionmaker[Session], tenant_id: uuid.UUID, model_key: str) -> None:
        super().__init__(stores_text=True)
        self._factory, self._tenant_id, self._model_key = factory, tenant_id, model_key

    @property
    def client(self) -> sessionmaker[Session]:
        return self._factory

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Store nodes (with embeddings) as chunks of one document per ref_doc_id."""
        ids: list[str] = []
        with tenant_scope(self._factory, self._tenant_id) as session:
            for source, group in _by_document(nodes).items():
                doc_id = self._document(session, source, group[0])
                rows = []
                for n, node in enumerate(group):
                    chunk_id = _uuid(node.node_id)
                    rows.append({"id": chunk_id, "tenant_id": self._tenant_id, "document_id": doc_id,
                                 "inbox_id": None, "ordinal": n, "heading": str(node.metadata.get("heading", "")),
                                 "text": node.get_content(), "embedding_model": self._model_key,
                                 "embedding": node.get_embedding()})
                    ids.append(node.node_id)
                session.execute(insert(KbChunk), rows)
                session.execute(update(KbDocument).where(KbDocument.id == doc_id)
                                .values(chunk_count=KbDocument.chunk_count + len(rows)))
        return ids

    def _document(self, session: Session, source: str, first: BaseNode) -> uuid.UUID:
        existing = session.execute(
            select(KbDocument.id).where(KbDocument.tenant_id == self._tenant_id, KbDocument.source == source,
                                        KbDocument.inbox_id.is_(None))
        ).scalar_one_or_none()
        if existing is not None:
            return existing
        doc = KbDocument(tenant_id=self._tenant_id, source=source, title=str(first.metadata.get("title", source))[:500],
                         url=first.metadata.get("url"), format="text", checksum="", embedding_model=self._model_key,
                         chunker_version=CHUNKER_VERSION, chunk_count=0)
        session.add(doc)
        session.flush()
        return doc.id

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        with tenant_scope(self._factory, self._tenant_id) as session:
            session.execute(delete(KbDocument).where(KbDocument.tenant_id == self._tenant_id,
                                                     KbDocument.source == ref_doc_id))

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if query.query_embedding is None:
            raise ValueError("TenantVectorStore needs a query embedding")
        import numpy as np

        q = SearchQuery(query.query_str or "", np.asarray(query.query_embedding, dtype=np.float32), self._model_key,
                        self._tenant_id)
        k = query.similarity_top_k
        with tenant_scope(self._factory, self._tenant_id) as session:
            if query.mode == VectorStoreQueryMode.HYBRID:
                # Deeper candidate lists only when more passages are asked for than they hold.
                hits = hybrid_search(session=session, query=q, top_k=k, candidates=k if k > TEXT_CANDIDATES else None)
                scores = [h.similarity for h in hits]
            else:  # text_search: ts_rank; anything else: cosine similarity
                search = text_candidates if query.mode == VectorStoreQueryMode.TEXT_SEARCH else vector_candidates
                ranked = search(session=session, query=q, n=k)
                hits = _hits(session, self._tenant_id, ranked)
                scores = [score for _, score in ranked]
        return VectorStoreQueryResult(nodes=[hit_node(h) for h in hits], similarities=scores,
                                      ids=[str(h.chunk_id) for h in hits])


class KbRetriever(BaseRetriever):
    """Hybrid retrieval of one tenant's KB as a LlamaIndex retriever (score = fused RRF score)."""

    def __init__(self, knowledge: Any, *, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None = None,
                 top_k: int = 5) -> None:
        super().__init__()
        self._knowledge, self._tenant_id, self._inbox_id, self._top_k = knowledge, tenant_id, inbox_id, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._knowledge.search(query_bundle.query_str, tenant_id=self._tenant_id, inbox_id=self._inbox_id,
                                      top_k=self._top_k)
        return [NodeWithScore(node=hit_node(h), score=h.score) for h in hits]


def _by_document(nodes: Sequence[BaseNode]) -> dict[str, list[BaseNode]]:
    groups: dict[str, list[BaseNode]] = {}
    for node in nodes:
        source = node.ref_doc_id or str(node.metadata.get("source") or node.node_id)
        groups.setdefault(source, []).append(node)
    return groups


def _uuid(node_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(node_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, node_id)


def _hits(session: Session, tenant_id: uuid.UUID, ranked: Sequence[tuple[uuid.UUID, float]]) -> list[Hit]:
    """Details of ranked (chunk id, score) pairs, in rank order (score kept as the fused score)."""
    if not ranked:
        return []
    rows = {r.id: r for r in session.execute(
        select(KbChunk.id, KbChunk.document_id, KbChunk.heading, KbChunk.text, KbDocument.source, KbDocument.url,
               KbDocument.title)
        .join(KbDocument, KbDocument.id == KbChunk.document_id)
        .where(KbChunk.tenant_id == tenant_id, KbChunk.id.in_([cid for cid, _ in ranked]))
    )}
    return [
        Hit(chunk_id=cid, document_id=r.document_id, source=r.source, url=r.url, title=r.title, heading=r.heading,
            text=r.text, score=score, similarity=score, text_rank=None)
        for cid, score in ranked
        if (r := rows.get(cid)) is not None
    ]
