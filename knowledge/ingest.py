"""Ingest files into a tenant's knowledge base: skip unchanged, replace changed, prune removed.

A document is unchanged when its bytes (sha256), the embedding model and the chunker version
are the same as stored; then nothing is read into the model or written. A changed document
keeps its id and gets all-new chunks in one transaction, so a search never sees half of it.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from knowledge.chunking import (
    CHUNKER_VERSION,
    DEFAULT_MAX_CHARS,
    Chunk,
    DocFormat,
    ParsedDocument,
    chunk_document,
    embedding_text,
    format_for,
)
from knowledge.embeddings import Embedder
from knowledge.models import KbChunk, KbDocument

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    ADDED = "added"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    source: str
    outcome: Outcome
    chunks: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def chunks_written(self) -> int:
        return sum(r.chunks for r in self.results if r.outcome in {Outcome.ADDED, Outcome.REPLACED})

    def summary(self) -> str:
        parts = [f"{self.count(o)} {o.value}" for o in Outcome] + [f"{self.chunks_written} chunks written"]
        if self.pruned:
            parts.append(f"{len(self.pruned)} removed")
        return ", ".join(parts) + f" in {self.seconds:.1f}s"


def title_from_name(path: str) -> str:
    """'040_backup.rst' -> 'Backup' (used when a document has no title of its own)."""
    stem = PurePosixPath(path).stem.lstrip("0123456789_- ")
    words = stem.replace("_", " ").replace("-", " ").split()
    return " ".join(words)[:1].upper() + " ".join(words)[1:] if words else PurePosixPath(path).name


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[FileResult]]:
    """Supported files under the given files/folders (sorted), and refusals for named files."""
    found: list[Path] = []
    refused: list[FileResult] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and format_for(f) and not _hidden(f, p)))
        elif p.is_file() and format_for(p):
            found.append(p)
        else:
            why = "no such file" if not p.exists() else "not Markdown, reStructuredText, HTML or plain text"
            refused.append(FileResult(source=str(p), outcome=Outcome.FAILED, error=why))
    return list(dict.fromkeys(f.resolve() for f in found)), refused


def skipped_files(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """Files under the given folders that discover() leaves out, each with the reason (sorted)."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        if not p.is_dir():
            continue
        for f in sorted(f for f in p.rglob("*") if f.is_file()):
            if _hidden(f, p):
                out.append((f, "hidden (a name starting with '.')"))
            elif not format_for(f):
                out.append((f, f"not Markdown, reStructuredText, HTML or plain text ({f.suffix or 'no extension'})"))
    return out


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(root).parts)


def source_for(path: Path) -> str:
    return path.resolve().as_posix()


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


UrlFor = Callable[[Path], str | None]
Chunker = Callable[..., tuple[ParsedDocument, list[Chunk]]]


def url_template(template: str, root: Path | None = None) -> UrlFor:
    """--url-template: {path} (relative to root), {name} and {stem} of each file."""

    def url_for(path: Path) -> str | None:
        rel = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else path.name
        return template.format(path=rel, name=path.name, stem=path.stem)

    return url_for


@dataclass(frozen=True)
class Stored:
    id: uuid.UUID
    checksum: str
    embedding_model: str
    chunker_version: int


def stored_documents(*, session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None) -> dict[str, Stored]:
    rows = session.execute(
        select(KbDocument.source, KbDocument.id, KbDocument.checksum, KbDocument.embedding_model,
               KbDocument.chunker_version)
        .where(KbDocument.tenant_id == tenant_id, KbDocument.inbox_id.is_(None) if inbox_id is None
               else KbDocument.inbox_id == inbox_id)
    ).all()
    return {r.source: Stored(r.id, r.checksum, r.embedding_model, r.chunker_version) for r in rows}


@dataclass(frozen=True)
class NewDocument:
    source: str
    url: str | None
    title: str
    format: str
    checksum: str
    embedding_model: str
    chunks: Sequence[Chunk]
    vectors: Sequence[Sequence[float]]


def write_document(
    *, session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None, doc: NewDocument, existing: uuid.UUID | None
) -> uuid.UUID:
    """Insert or replace one document and all its chunks (the caller commits)."""
    values = {
        "url": doc.url, "title": doc.title, "format": doc.format, "checksum": doc.checksum,
        "embedding_model": doc.embedding_model, "chunker_version": CHUNKER_VERSION, "chunk_count": len(doc.chunks),
    }
    if existing is None:
        document = KbDocument(tenant_id=tenant_id, inbox_id=inbox_id, source=doc.source, **values)
        session.add(document)
        session.flush()
        doc_id = document.id
    else:
        doc_id = existing
        session.execute(delete(KbChunk).where(KbChunk.tenant_id == tenant_id, KbChunk.document_id == doc_id))
        session.execute(
            update(KbDocument).where(KbDocument.tenant_id == tenant_id, KbDocument.id == doc_id)
            .values(**values, updated_at=func.now())
        )
    if doc.chunks:
        session.execute(
            insert(KbChunk),
            [
                {"id": uuid.uuid4(), "tenant_id": tenant_id, "document_id": doc_id, "inbox_id": inbox_id,
                 "ordinal": c.ordinal, "heading": c.heading, "text": c.text, "embedding_model": doc.embedding_model,
                 "embedding": v}
                for c, v in zip(doc.chunks, doc.vectors, strict=True)
            ],
        )
    return doc_id


def delete_documents(
    *, session: Session, tenant_id: uuid.UUID, sources: Sequence[str] = (), ids: Sequence[uuid.UUID] = ()
) -> list[str]:
    """Delete documents (their chunks cascade) by source or id; returns the deleted sources."""
    cond = []
    if sources:
        cond.append(KbDocument.source.in_(list(sources)))
    if ids:
        cond.append(KbDocument.id.in_(list(ids)))
    if not cond:
        return []
    rows = session.execute(
        delete(KbDocument).where(KbDocument.tenant_id == tenant_id, or_(*cond)).returning(KbDocument.source)
    ).scalars().all()
    return list(rows)


def missing_sources(*, session: Session, tenant_id: uuid.UUID, under: Sequence[str] = ()) -> list[str]:
    """Stored file sources (optionally under these folders) whose file no longer exists."""
    sources = session.execute(select(KbDocument.source).where(KbDocument.tenant_id == tenant_id)).scalars().all()
    prefixes = [u.rstrip("/") + "/" for u in under]
    return sorted(
        s for s in sources
        if s.startswith("/") and (not prefixes or any(s.startswith(p) for p in prefixes)) and not Path(s).exists()
    )


Progress = Callable[[FileResult], None]


def ingest_files(
    files: Sequence[Path],
    *,
    factory: sessionmaker[Session],
    embedder: Embedder,
    tenant_id: uuid.UUID,
    inbox_id: uuid.UUID | None = None,
    url_for: UrlFor | None = None,
    on_file: Progress | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> IngestReport:
    """One transaction per changed file; unchanged files cost one hash and no write."""
    started = time.perf_counter()
    report = IngestReport()
    with tenant_scope(factory, tenant_id) as session:
        stored = stored_documents(session=session, tenant_id=tenant_id, inbox_id=inbox_id)
    for path in files:
        result = _ingest_one(path, stored=stored, factory=factory, embedder=embedder, tenant_id=tenant_id,
                             inbox_id=inbox_id, url_for=url_for, max_chars=max_chars)
        report.results.append(result)
        if on_file is not None:
            on_file(result)
    report.seconds = time.perf_counter() - started
    return report


def _ingest_one(
    path: Path, *, stored: dict[str, Stored], factory: sessionmaker[Session], embedder: Embedder,
    tenant_id: uuid.UUID, inbox_id: uuid.UUID | None, url_for: UrlFor | None, max_chars: int,
) -> FileResult:
    source = source_for(path)
    fmt = format_for(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileResult(source, Outcome.FAILED, error=f"cannot read: {exc.strerror or exc}")
    if fmt is None:
        return FileResult(source, Outcome.FAILED, error="unsupported format")
    return ingest_content(data, source=source, fmt=fmt, url=url_for(path) if url_for else None,
                          old=stored.get(source), factory=factory, embedder=embedder, tenant_id=tenant_id,
                          inbox_id=inbox_id, max_chars=max_chars)


def ingest_content(
    data: bytes, *, source: str, fmt: DocFormat, url: str | None, old: Stored | None, factory: sessionmaker[Session],
    embedder: Embedder, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None, max_chars: int = DEFAULT_MAX_CHARS,
    force: bool = False, chunker: Chunker = chunk_document,
) -> FileResult:
    """Chunk, embed and store one document's bytes (files and API uploads); `force` re-embeds unchanged ones.

    `chunker` lets the API parse uploads under the processing budget (a child process)."""
    digest = checksum(data)
    if old and not force and (old.checksum, old.embedding_model, old.chunker_version) == (
            digest, embedder.key, CHUNKER_VERSION):
        return FileResult(source, Outcome.UNCHANGED)
    parsed, chunks = chunker(
        data.decode("utf-8", errors="replace"), fmt, fallback_title=title_from_name(source), max_chars=max_chars
    )
    vectors = embedder.embed_documents([embedding_text(parsed.title, c) for c in chunks])
    doc = NewDocument(
        source=source, url=url, title=parsed.title, format=fmt.value,
        checksum=digest, embedding_model=embedder.key, chunks=chunks, vectors=list(vectors),
    )
    with tenant_scope(factory, tenant_id) as session:
        write_document(session=session, tenant_id=tenant_id, inbox_id=inbox_id, doc=doc,
                       existing=old.id if old else None)
    log.debug("kb document stored", extra={"source": source, "chunks": len(chunks), "replaced": bool(old)})
    return FileResult(source, Outcome.REPLACED if old else Outcome.ADDED, chunks=len(chunks))
