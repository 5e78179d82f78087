"""The knowledge base over HTTP: upload, list, delete and re-index documents, search, evaluate, draft stats.

Handlers call the functions `threadline kb` calls (knowledge.service.Knowledge, knowledge.evaluation);
what only uploads need (checks, blobs, budgeted parsing) is in knowledge.uploads.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from admin_api.auth import TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from admin_api.problems import ProblemError, ProblemKind
from core.blobs import BlobStore
from core.errors import InvalidInput, NotFound
from core.runtime import Runtime
from core.tenancy import audit as audit_log
from knowledge import uploads
from knowledge.evaluation import load_cases, run_eval
from knowledge.ingest import Outcome, Stored, ingest_content, stored_documents
from knowledge.models import KbDocument
from knowledge.service import Knowledge

router = admin_router("knowledge")

TOO_LARGE = ProblemKind("payload-too-large", 413, "The upload is too large")
EVAL_MAX_BYTES = 1024 * 1024
EVAL_MAX_CASES = 500  # each case is one embedding and three searches: keep a request under a minute
_lock = threading.Lock()


def knowledge_of(request: Request, runtime: Runtime) -> Knowledge:
    """One Knowledge per app: the embedding model loads once, on first use."""
    with _lock:
        kb: Knowledge | None = getattr(request.app.state, "knowledge", None)
        if kb is None:
            kb = request.app.state.knowledge = Knowledge.from_settings(runtime.settings, runtime.factory)
        return kb


class DocumentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source: str = Field(description="`upload/<name>` for uploads, a path or URI for `threadline kb ingest`")
    title: str
    format: str
    inbox_id: uuid.UUID | None
    chunks: int = Field(validation_alias="chunk_count")
    embedding_model: str
    created_at: datetime
    updated_at: datetime


class IngestResult(BaseModel):
    document: DocumentPublic
    outcome: str = Field(description="added, replaced or unchanged (same bytes, model and chunker)")
    chunks_written: int


class HitPublic(BaseModel):
    document: str
    title: str
    heading: str
    url: str | None
    score: float
    similarity: float
    text_rank: float | None
    text: str


class EvalResultPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(description="the ranking: hybrid, vector or full text (with the model), or bm25")
    cases: int
    hit_at_1: float = Field(alias="hit@1")
    hit_at_3: float = Field(alias="hit@3")
    hit_at_5: float = Field(alias="hit@5")
    mrr: float


class DraftWeek(BaseModel):
    week: date = Field(description="the Monday the week starts on")
    sent_as_is: int
    edited: int
    discarded: int
    stale: int
    pending: int
    no_answer: int


def _check_length(request: Request, limit: int) -> None:
    """Refuse by Content-Length before reading a body we would throw away."""
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        declared = 0
    if declared > limit + 64 * 1024:  # multipart boundaries and part headers
        raise ProblemError(TOO_LARGE, f"at most {limit} bytes")


def _read(file: UploadFile, limit: int) -> bytes:
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise ProblemError(TOO_LARGE, f"at most {limit} bytes")
    return data


def _document(session: Any, tenant_id: uuid.UUID, document_id: uuid.UUID) -> KbDocument:
    doc = session.get(KbDocument, document_id)
    if doc is None or doc.tenant_id != tenant_id:
        raise NotFound("no such document")
    return doc  # type: ignore[no-any-return]


@router.post("/knowledge/documents", status_code=201, response_model=IngestResult)
def upload(request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
           runtime: RuntimeDep, file: Annotated[UploadFile, File(description="a .md, .rst, .html or .txt file")],
           inbox_id: Annotated[uuid.UUID | None, Query(description="only this inbox's drafts use it")] = None,
           ) -> IngestResult:
    """Add a document, or replace the one uploaded under the same file name."""
    _check_length(request, uploads.UPLOAD_MAX_BYTES)
    tenant_id = principal.require_tenant()
    doc_upload = uploads.check_upload(file.filename, _read(file, uploads.UPLOAD_MAX_BYTES))
    kb = knowledge_of(request, runtime)
    BlobStore.from_settings(runtime.settings).put(doc_upload.data)  # what a re-index reads later
    old = stored_documents(session=session, tenant_id=tenant_id, inbox_id=inbox_id).get(doc_upload.source)
    result = ingest_content(doc_upload.data, source=doc_upload.source, fmt=doc_upload.fmt, url=None, old=old,
                            factory=runtime.factory, embedder=kb.embedder, tenant_id=tenant_id, inbox_id=inbox_id,
                            chunker=uploads.budgeted_chunker(runtime.settings))
    doc = session.execute(_by_source(tenant_id, inbox_id, doc_upload.source)).scalar_one()
    session.refresh(doc)
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit_context(request, principal),
                     action="knowledge.document_uploaded", target=f"kb_document:{doc.id}",
                     data={"source": doc.source, "outcome": result.outcome.value})
    response.headers["Location"] = f"{request.url.path}/{doc.id}"
    return IngestResult(document=DocumentPublic.model_validate(doc), outcome=result.outcome.value,
                        chunks_written=result.chunks)


def _by_source(tenant_id: uuid.UUID, inbox_id: uuid.UUID | None, source: str) -> Any:
    from sqlalchemy import select

    inbox = KbDocument.inbox_id.is_(None) if inbox_id is None else KbDocument.inbox_id == inbox_id
    return select(KbDocument).where(KbDocument.tenant_id == tenant_id, KbDocument.source == source, inbox)


@router.get("/knowledge/documents", response_model=Page[DocumentPublic])
def list_documents(request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
                   cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[DocumentPublic]:
    rows = uploads.list_documents(session=session, tenant_id=principal.require_tenant(),
                                  after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=DocumentPublic.model_validate)


@router.get("/knowledge/documents/{document_id}", response_model=DocumentPublic)
def show_document(document_id: uuid.UUID, session: SessionDep, principal: TenantPrincipalDep) -> DocumentPublic:
    return DocumentPublic.model_validate(_document(session, principal.require_tenant(), document_id))


@router.delete("/knowledge/documents/{document_id}", status_code=204)
def delete_document(document_id: uuid.UUID, request: Request, session: SessionDep, principal: TenantPrincipalDep,
                    runtime: RuntimeDep) -> Response:
    """Delete a document and its passages; drafts already written keep their citations."""
    tenant_id = principal.require_tenant()
    doc = _document(session, tenant_id, document_id)
    source = doc.source  # read without a lock: the service deletes in its own unit of work
    if not knowledge_of(request, runtime).delete(tenant_id=tenant_id, ids=[document_id]):
        raise NotFound("no such document")
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit_context(request, principal),
                     action="knowledge.document_deleted", target=f"kb_document:{document_id}", data={"source": source})
    return Response(status_code=204)


@router.post("/knowledge/documents/{document_id}/reindex", response_model=IngestResult)
def reindex(document_id: uuid.UUID, request: Request, session: SessionDep, principal: TenantPrincipalDep,
            runtime: RuntimeDep) -> IngestResult:
    """Parse and embed the document again from its stored content (after a chunker or model change)."""
    tenant_id = principal.require_tenant()
    doc = _document(session, tenant_id, document_id)
    data, fmt = uploads.stored_content(doc, BlobStore.from_settings(runtime.settings))
    old = Stored(doc.id, doc.checksum, doc.embedding_model, doc.chunker_version)
    source, url, inbox_id = doc.source, doc.url, doc.inbox_id  # ingest replaces chunks in its own transaction
    result = ingest_content(data, source=source, fmt=fmt, url=url, old=old, factory=runtime.factory,
                            embedder=knowledge_of(request, runtime).embedder, tenant_id=tenant_id, inbox_id=inbox_id,
                            force=True, chunker=uploads.budgeted_chunker(runtime.settings))
    if result.outcome is Outcome.FAILED:
        raise InvalidInput(result.error or "re-index failed")
    fresh = _document(session, tenant_id, document_id)
    session.refresh(fresh)  # READ COMMITTED: the next statement sees what ingest committed
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit_context(request, principal),
                     action="knowledge.document_reindexed", target=f"kb_document:{document_id}")
    return IngestResult(document=DocumentPublic.model_validate(fresh), outcome=result.outcome.value,
                        chunks_written=result.chunks)


@router.get("/knowledge/search", response_model=list[HitPublic])
def search(request: Request, principal: TenantPrincipalDep, runtime: RuntimeDep,
           q: Annotated[str, Query(min_length=1, max_length=2000, description="the question, in the customer's words")],
           top: Annotated[int, Query(ge=1, le=50)] = 5, inbox_id: uuid.UUID | None = None) -> list[HitPublic]:
    """Hybrid (vector + full-text) search, the passages a draft would use, best first."""
    hits = knowledge_of(request, runtime).search(q, tenant_id=principal.require_tenant(), inbox_id=inbox_id, top_k=top)
    return [HitPublic.model_validate(h.as_json()) for h in hits]


@router.post("/knowledge/eval", response_model=list[EvalResultPublic], response_model_by_alias=True)
def evaluate(request: Request, principal: TenantPrincipalDep, runtime: RuntimeDep,
             file: Annotated[UploadFile, File(description='JSONL: one {"q": "...", "doc": "name.md"} per line')],
             baseline: bool = True) -> list[EvalResultPublic]:
    """Retrieval quality over an evaluation set: hit@1/3/5 and MRR for hybrid, each half and BM25."""
    _check_length(request, EVAL_MAX_BYTES)
    data = _read(file, EVAL_MAX_BYTES)
    with tempfile.TemporaryDirectory(prefix="tl-eval-") as tmp:
        path = Path(tmp) / "eval.jsonl"
        path.write_bytes(data)
        try:
            cases = load_cases(path)
        except UnicodeDecodeError:
            raise InvalidInput("the evaluation file is not UTF-8 text") from None
        except InvalidInput as exc:
            raise InvalidInput(str(exc).replace(str(path), file.filename or "eval.jsonl")) from None
    if len(cases) > EVAL_MAX_CASES:
        raise InvalidInput(f"at most {EVAL_MAX_CASES} cases per request (use `threadline kb eval` for more)")
    results = run_eval(cases, factory=runtime.factory, embedder=knowledge_of(request, runtime).embedder,
                       tenant_id=principal.require_tenant(), baseline=baseline)
    return [EvalResultPublic.model_validate(r.as_json()) for r in results]


@router.get("/knowledge/draft-stats", response_model=list[DraftWeek])
def draft_stats(session: SessionDep, principal: TenantPrincipalDep,
                since: Annotated[datetime | None, Query(description="only drafts created since")] = None,
                ) -> list[DraftWeek]:
    """What agents did with KB drafts, per week: sent as-is, edited, discarded, went stale."""
    weeks = uploads.draft_stats_by_week(session=session, tenant_id=principal.require_tenant(), since=since)
    return [DraftWeek(**w.__dict__) for w in weeks]
