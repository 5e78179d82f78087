"""Hybrid search on the real Postgres: the right document, and never another tenant's."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from core.db.session import tenant_scope
from core.runtime import Runtime
from knowledge.embeddings import LocalMiniLM
from knowledge.ingest import discover
from knowledge import retrieval
from knowledge.models import KbChunk, KbDocument
from knowledge.retrieval import SearchQuery, vector_candidates
from tests.knowledge.conftest import RESTIC_DOCS, ResticKb, knowledge_for, new_tenant


@pytest.mark.parametrize(
    ("question", "document"),
    [
        ("How do I get back one single file I deleted yesterday?", "050_restore.rst"),
        ("How do I delete old backups but keep the last 7 daily ones?", "060_forget.rst"),
        ("How do I change the password of my repository?", "070_encryption.rst"),
        ("I get 'unable to open config file' when my script runs", "075_scripting.rst"),
    ],
)
def test_search_finds_the_document_that_answers(restic_kb: ResticKb, question: str, document: str) -> None:
    hits = restic_kb.knowledge.search(question, tenant_id=restic_kb.tenant_id, top_k=3)
    assert document in [Path(h.source).name for h in hits]


def test_hits_carry_document_title_heading_score_and_text_best_first(restic_kb: ResticKb) -> None:
    hits = restic_kb.knowledge.search("exclude a folder from the backup", tenant_id=restic_kb.tenant_id, top_k=5)
    top = hits[0].as_json()
    assert set(top) == {"document", "title", "heading", "url", "score", "similarity", "text_rank", "text"}
    assert (Path(str(top["document"])).name, top["title"]) == ("040_backup.rst", "Backing up")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_second_tenant_never_sees_the_first_tenants_documents(
    restic_kb: ResticKb, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    rt = restic_kb.rt
    other, _ = new_tenant(rt)
    (tmp_path / "restore.md").write_text("# Restoring\n\nTo restore a file from a backup, open the portal.")
    knowledge = knowledge_for(rt, embedder)
    knowledge.ingest(discover([tmp_path])[0], tenant_id=other)
    questions = ["How do I restore a single file from a snapshot?", "restic forget --keep-daily 7", "key passwd"]
    sources = {h.source for q in questions for h in knowledge.search(q, tenant_id=other, top_k=20)}
    assert sources == {(tmp_path / "restore.md").resolve().as_posix()}


def test_rls_hides_other_tenants_rows_even_from_a_query_without_a_tenant_filter(restic_kb: ResticKb) -> None:
    other, _ = new_tenant(restic_kb.rt)
    with tenant_scope(restic_kb.rt.factory, other) as session:
        visible = session.execute(select(func.count()).select_from(KbChunk)).scalar_one()
        docs = session.execute(select(func.count()).select_from(KbDocument)).scalar_one()
    with tenant_scope(restic_kb.rt.factory, restic_kb.tenant_id) as session:
        own = session.execute(select(func.count()).select_from(KbChunk)).scalar_one()
    assert (visible, docs, own > 500) == (0, 0, True)


def test_inbox_scoped_documents_show_only_in_their_inbox(
    kb_runtime: Runtime, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    tenant_id, (sales, support) = new_tenant(kb_runtime, inboxes=2)
    knowledge = knowledge_for(kb_runtime, embedder)
    (tmp_path / "all").mkdir()
    (tmp_path / "sales").mkdir()
    (tmp_path / "all" / "hours.md").write_text("# Opening hours\n\nWe are open from nine to five.\n")
    (tmp_path / "sales" / "discounts.md").write_text("# Discounts\n\nStudents get a discount of ten percent.\n")
    knowledge.ingest(discover([tmp_path / "all"])[0], tenant_id=tenant_id)
    knowledge.ingest(discover([tmp_path / "sales"])[0], tenant_id=tenant_id, inbox_id=sales)

    def names(inbox: object) -> set[str]:
        hits = knowledge.search("student discount", tenant_id=tenant_id, inbox_id=inbox, top_k=5)  # type: ignore[arg-type]
        return {Path(h.source).name for h in hits}

    assert (names(sales), names(support), names(None)) == (
        {"hours.md", "discounts.md"}, {"hours.md"}, {"hours.md", "discounts.md"})


def _brute_force(restic_kb: ResticKb, vector: np.ndarray, n: int) -> list[uuid.UUID]:
    """The n nearest chunks by cosine, computed here in NumPy from the stored vectors."""
    with tenant_scope(restic_kb.rt.factory, restic_kb.tenant_id) as session:
        rows = session.execute(select(KbChunk.id, KbChunk.embedding)
                               .where(KbChunk.tenant_id == restic_kb.tenant_id)).all()
    matrix = np.array([np.asarray(r.embedding, dtype=np.float32) for r in rows])
    sims = matrix @ vector / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(vector))
    return [rows[i].id for i in np.argsort(-sims)[:n]]


@pytest.mark.parametrize("question", ["How do I restore a single file?", "exclude caches from the backup",
                                      "repository is locked by another process"])
def test_the_exact_scan_is_exact_and_the_index_finds_nearly_the_same(
    restic_kb: ResticKb, embedder: LocalMiniLM, question: str
) -> None:
    vector = embedder.embed_query(question)
    query = SearchQuery(question, vector, embedder.key, restic_kb.tenant_id)
    with tenant_scope(restic_kb.rt.factory, restic_kb.tenant_id) as session:
        exact = [cid for cid, _ in vector_candidates(session=session, query=query, n=10, method="exact")]
        hnsw = [cid for cid, _ in vector_candidates(session=session, query=query, n=10, method="hnsw")]
        auto = [cid for cid, _ in vector_candidates(session=session, query=query, n=10)]
    assert exact == _brute_force(restic_kb, vector, 10)
    assert auto == exact  # ~540 chunks is far below EXACT_SCAN_MAX_CHUNKS
    assert len(set(hnsw) & set(exact)) >= 8


def test_the_scan_is_chosen_by_how_many_chunks_the_tenant_has(restic_kb: ResticKb, embedder: LocalMiniLM) -> None:
    query = SearchQuery("restore", embedder.embed_query("restore"), embedder.key, restic_kb.tenant_id)
    with tenant_scope(restic_kb.rt.factory, restic_kb.tenant_id) as session:
        stored = session.execute(select(func.count()).select_from(KbChunk)).scalar_one()
        assert retrieval.tenant_chunks(session, query) == stored > 500
    other, _ = new_tenant(restic_kb.rt)
    with tenant_scope(restic_kb.rt.factory, other) as session:
        assert retrieval.tenant_chunks(session, SearchQuery("x", query.vector, embedder.key, other)) == 0
    assert retrieval.exact_scan_pays(stored) and retrieval.exact_scan_pays(retrieval.EXACT_SCAN_MAX_CHUNKS)
    assert not retrieval.exact_scan_pays(retrieval.EXACT_SCAN_MAX_CHUNKS + 1)


@pytest.mark.parametrize("question", ["How do I restore a single file?", "restic forget --keep-daily 7",
                                      "unable to open config file", "key passwd"])
def test_the_one_pass_statement_ranks_exactly_like_the_two_separate_queries(
    restic_kb: ResticKb, embedder: LocalMiniLM, question: str
) -> None:
    query = SearchQuery(question, embedder.embed_query(question), embedder.key, restic_kb.tenant_id)
    with tenant_scope(restic_kb.rt.factory, restic_kb.tenant_id) as session:
        vector_rows, text_rows = retrieval.one_pass_passages(session=session, query=query, nv=10, nt=20)
        separate_vector = retrieval.vector_passages(session=session, query=query, n=10, method="exact")
        separate_text = retrieval.text_passages(session=session, query=query, n=20)
    assert [r.id for r in vector_rows] == [r.id for r in separate_vector]
    assert [r.id for r in text_rows] == [r.id for r in separate_text] and text_rows
    assert retrieval.fuse(vector_rows, text_rows, top_k=5) == retrieval.fuse(separate_vector, separate_text, top_k=5)


def test_a_large_tenant_goes_through_the_index_and_finds_the_same_documents(
    restic_kb: ResticKb, embedder: LocalMiniLM
) -> None:
    small = restic_kb.knowledge
    large = dataclasses.replace(small, exact_scan_max_chunks=100)  # the restic KB (~540 chunks) counts as large
    for question in ["How do I get back one single file I deleted yesterday?", "How do I change my repository password?",
                     "restic forget --keep-daily 7"]:
        one_pass = small.search(question, tenant_id=restic_kb.tenant_id)
        indexed = large.search(question, tenant_id=restic_kb.tenant_id)
        assert indexed[0].source == one_pass[0].source
        assert len({h.chunk_id for h in indexed} & {h.chunk_id for h in one_pass}) >= 4


def test_a_long_mail_searches_with_its_first_words_only(restic_kb: ResticKb) -> None:
    body = (RESTIC_DOCS / "040_backup.rst").read_text(encoding="utf-8")[:3000]
    question = "Restore a single file from my snapshot\n\n" + body
    with tenant_scope(restic_kb.rt.factory, restic_kb.tenant_id) as session:
        query = str(session.execute(text(retrieval._TSQUERY), {"text": question}).scalar_one())
    terms = query.split(" | ")
    assert len(terms) == retrieval.MAX_QUERY_TERMS and terms[:4] == ["'restor'", "'singl'", "'file'", "'snapshot'"]
    hits = restic_kb.knowledge.search(question, tenant_id=restic_kb.tenant_id)
    assert hits and all(h.text_rank is None or h.text_rank > 0 for h in hits)


@pytest.mark.parametrize("question", ["C:\\Users\\bob\\'quoted' \\\\ path", "' | & ! ( ) :*", "the of and", ""])
def test_odd_questions_search_without_error(restic_kb: ResticKb, question: str) -> None:
    restic_kb.knowledge.search(question, tenant_id=restic_kb.tenant_id)  # raises on a malformed tsquery
