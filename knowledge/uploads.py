"""Documents that arrive over the API: checked, kept as blobs, parsed under the processing budget.

An upload is refused unless its name ends in a supported extension *and* its bytes are text: no
NUL byte, valid UTF-8, no executable or document magic number (a PDF renamed `.md` is not
Markdown). HTML is only ever parsed into text by knowledge.chunking (scripts and styles dropped);
nothing we serve renders it. Parsing runs in a budgeted child process (core.budget), so a
hostile document cannot stall the API. The bytes are kept content-addressed (the blob's sha256
is the document's checksum), which is what a later re-index reads.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from core.blobs import BlobStore
from core.budget import shared_runner
from core.errors import Conflict, InvalidInput
from core.settings import Settings
from core.tickets.models import Draft, DraftState
from knowledge.chunking import Chunk, DocFormat, ParsedDocument, chunk_document, format_for
from knowledge.models import KbDocument

UPLOAD_MAX_BYTES = 5 * 1024 * 1024  # a long manual page; books go in through `threadline kb ingest`
UPLOAD_SOURCE_PREFIX = "upload/"  # not a path or URL; eval files name uploads by file name
_BINARY_MAGIC = (b"MZ", b"\x7fELF", b"%PDF-", b"PK\x03\x04", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\xca\xfe\xba\xbe",
                 b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")


class DocumentRefused(InvalidInput):
    """Not a Markdown, reStructuredText, HTML or text document we will parse."""


@dataclass(frozen=True)
class Upload:
    name: str  # the base name, as the source's last part
    fmt: DocFormat
    data: bytes

    @property
    def source(self) -> str:
        return UPLOAD_SOURCE_PREFIX + self.name


def check_upload(filename: str | None, data: bytes) -> Upload:
    """The upload as a document, or DocumentRefused saying why (type from extension *and* content)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise DocumentRefused("give the file a name (up to 200 characters) ending in .md, .rst, .html or .txt")
    fmt = format_for(name)
    if fmt is None:
        raise DocumentRefused("only Markdown (.md), reStructuredText (.rst), HTML (.html) and text (.txt) files")
    if len(data) > UPLOAD_MAX_BYTES:
        raise DocumentRefused(f"larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MiB")
    if data.startswith(_BINARY_MAGIC) or b"\x00" in data:
        raise DocumentRefused(f"{name} is not text (binary content)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentRefused(f"{name} is not UTF-8 text") from None
    return Upload(name, fmt, data)


def budgeted_chunker(settings: Settings) -> Any:
    """chunk_document in a child process under the mail processing budget (same limits, same reasons)."""
    runner = shared_runner(seconds=settings.mail_budget_seconds, memory_mb=settings.mail_budget_memory_mb)

    def chunk(text: str, fmt: DocFormat, *, fallback_title: str, max_chars: int) -> tuple[ParsedDocument, list[Chunk]]:
        return runner.run(chunk_document, text, fmt, fallback_title=fallback_title, max_chars=max_chars)

    return chunk


def stored_content(doc: KbDocument, blobs: BlobStore) -> tuple[bytes, DocFormat]:
    """What a re-index reads: the uploaded blob, or the file an operator ingested from this host."""
    fmt = DocFormat(doc.format)
    try:
        if doc.source.startswith(UPLOAD_SOURCE_PREFIX):
            return blobs.get(doc.checksum), fmt
        if doc.source.startswith("/"):
            return Path(doc.source).read_bytes(), fmt
    except (OSError, ValueError):
        pass
    raise Conflict("the document's content is no longer available: upload it again")


def list_documents(
    *, session: Session, tenant_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[KbDocument]:
    stmt = select(KbDocument).where(KbDocument.tenant_id == tenant_id)
    if after is not None:
        stmt = stmt.where(tuple_(KbDocument.created_at, KbDocument.id) < tuple_(*after))
    return list(session.execute(
        stmt.order_by(KbDocument.created_at.desc(), KbDocument.id.desc()).limit(limit)).scalars())


@dataclass(frozen=True)
class WeekStats:
    week: date  # Monday
    sent_as_is: int
    edited: int
    discarded: int
    stale: int
    pending: int
    no_answer: int


def draft_stats_by_week(*, session: Session, tenant_id: uuid.UUID, since: datetime | None = None) -> list[WeekStats]:
    """What became of drafts, per ISO week of their creation, oldest week first."""
    week = func.date_trunc("week", Draft.created_at)
    stmt = select(week, Draft.state, func.count()).where(Draft.tenant_id == tenant_id).group_by(week, Draft.state)
    if since is not None:
        stmt = stmt.where(Draft.created_at >= since)
    counts: dict[date, Counter[str]] = {}
    for start, state, n in session.execute(stmt).all():
        counts.setdefault(start.date(), Counter())[DraftState(state).value] += n
    return [
        WeekStats(w, c[DraftState.SENT], c[DraftState.EDITED], c[DraftState.DISCARDED], c[DraftState.STALE],
                  c[DraftState.PENDING], c[DraftState.NO_ANSWER])
        for w, c in sorted(counts.items())
    ]
