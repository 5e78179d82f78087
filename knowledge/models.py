"""KB documents and their chunks, in the same Postgres as tickets (pgvector + full text).

Vectors live in an untyped `vector` column next to the name of the model that produced them
(`embedding_model`). Switching THREADLINE_EMBEDDING therefore never mixes two vector spaces:
retrieval filters on the configured model, and ingest re-embeds documents stored under another
one. The HNSW indexes are partial expression indexes, one per known model and dimension
(pgvector's documented way to index vectors of several dimensions in one column); see
alembic/versions/0007_knowledge.py and `HNSW_INDEXES` below.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import Computed, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantOwned, new_id, utcnow_column

# Full-text configuration; headings weigh more than body text ('A' vs 'B').
TS_CONFIG = "english"
TSV_EXPRESSION = (
    f"setweight(to_tsvector('{TS_CONFIG}'::regconfig, heading), 'A') || "
    f"setweight(to_tsvector('{TS_CONFIG}'::regconfig, text), 'B')"
)

# embedding model key -> dimension, for which migrations created an HNSW index. Another model
# still works (exact scan, correct but slower); add a migration with its index to speed it up.
HNSW_INDEXES: dict[str, int] = {
    "local-minilm": 384,
    "openai:text-embedding-3-small": 1536,
}


def hnsw_index_name(model_key: str) -> str:
    return "ix_kb_chunks_hnsw_" + "".join(c if c.isalnum() else "_" for c in model_key).strip("_").lower()


class KbDocument(TenantOwned, Base):
    """One source file or URI of a tenant's knowledge base, optionally scoped to one inbox."""

    __tablename__ = "kb_documents"
    __table_args__ = (
        # NULLS NOT DISTINCT: a tenant-wide document (inbox_id NULL) is unique per source too.
        UniqueConstraint("tenant_id", "inbox_id", "source", postgresql_nulls_not_distinct=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    inbox_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("inboxes.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(Text)  # absolute path or URI, as given at ingest
    url: Mapped[str | None] = mapped_column(Text)  # where a reader can open it (drafts link here)
    title: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(16))  # markdown | rst | html | text
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the file's bytes
    embedding_model: Mapped[str] = mapped_column(String(200))
    chunker_version: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = utcnow_column()
    updated_at: Mapped[datetime] = utcnow_column()


class KbChunk(TenantOwned, Base):
    """A heading-bounded passage of a document with its embedding and full-text vector."""

    __tablename__ = "kb_chunks"
    __table_args__ = (
        Index("ix_kb_chunks_tsv", "tsv", postgresql_using="gin"),
        *(
            Index(
                hnsw_index_name(model),
                text(f"(embedding::vector({dim})) vector_cosine_ops"),
                postgresql_using="hnsw",
                postgresql_with={"m": 16, "ef_construction": 64},
                postgresql_where=text(f"embedding_model = '{model}'"),
            )
            for model, dim in HNSW_INDEXES.items()
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("kb_documents.id", ondelete="CASCADE"), index=True
    )
    # Copied from the document so retrieval filters without a join.
    inbox_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ordinal: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text)  # heading path, "Backing up > Excluding files"
    text: Mapped[str] = mapped_column(Text)
    embedding_model: Mapped[str] = mapped_column(String(200))
    embedding: Mapped[list[float]] = mapped_column(Vector())
    tsv: Mapped[str] = mapped_column(TSVECTOR, Computed(TSV_EXPRESSION, persisted=True))
