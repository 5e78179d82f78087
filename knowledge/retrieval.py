"""Hybrid retrieval: pgvector similarity fused with Postgres full-text ranking (RRF).

Two candidate lists come from one tenant's chunks embedded by the configured model: the
nearest vectors and the best `ts_rank` matches of the question's words. Reciprocal rank fusion
merges them; it needs no score calibration between cosine and ts_rank. Every query names the
tenant explicitly, and runs inside `tenant_scope`, where RLS is the second wall.

Two paths, chosen by how many chunks the tenant has:
- up to EXACT_SCAN_MAX_CHUNKS, one statement reads the tenant's rows once and ranks them both
  ways (`one_pass_passages`). The HNSW index covers every tenant, so for one tenant among many
  it must walk past the others' rows (iterative scan), and full-text ranking has to read the
  tenant's matching rows anyway: at 5,000 chunks a tenant (bench/retrieval.py, 100k chunks over
  20 tenants) an exact scan beat the index (p50 6.8 vs 10.6 ms) and is exact, and one pass for
  both lists was as fast as two statements side by side while holding one connection, not two;
- above it, the HNSW index and the full-text query run as two statements (Knowledge.search runs
  them side by side on two connections).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from knowledge.models import TS_CONFIG

K = TypeVar("K", bound=Hashable)

RRF_K = 60  # the constant from Cormack et al. (2009); damps the head of each list
# Candidates per half. RRF's top 5 rarely comes from deeper; on the restic evaluation set 10
# nearest vectors fuse as well as 20 (MRR 0.834 vs 0.827) at half the vector work.
VECTOR_CANDIDATES = 10
TEXT_CANDIDATES = 20
EF_SEARCH = 100
EXACT_SCAN_MAX_CHUNKS = 20_000
VectorMethod = Literal["auto", "hnsw", "exact"]


@dataclass(frozen=True)
class Hit:
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    source: str
    url: str | None
    title: str
    heading: str
    text: str
    score: float  # fused RRF score (rank-based; higher is better)
    similarity: float  # cosine similarity of question and passage, 0..1 for our models
    text_rank: float | None  # ts_rank when the question's words matched, else None

    def as_json(self) -> dict[str, object]:
        return {
            "document": self.source,
            "title": self.title,
            "heading": self.heading,
            "url": self.url,
            "score": round(self.score, 6),
            "similarity": round(self.similarity, 4),
            "text_rank": None if self.text_rank is None else round(self.text_rank, 4),
            "text": self.text,
        }


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], *, k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[K, float]]:
    """Fuse ranked lists: score(d) = Σ w_i / (k + rank_i(d)), rank from 1. Ties keep first-seen order."""
    if weights is not None and len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[K, float] = {}
    for i, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[i]
        for rank, key in enumerate(dict.fromkeys(ranking), start=1):  # a repeated id counts once
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
    order = {key: n for n, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def _literal(value: str) -> str:
    # The model key is rendered into the SQL (not bound) so the planner can match the partial
    # HNSW index even with a generic prepared plan; it comes from settings, and is quoted anyway.
    return "'" + value.replace("'", "''") + "'"


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


# No inbox given: every document of the tenant; an inbox: tenant-wide documents and its own.
_SCOPE = (
    "c.tenant_id = :tenant AND c.embedding_model = {model} "
    "AND (CAST(:inbox AS uuid) IS NULL OR c.inbox_id IS NULL OR c.inbox_id = :inbox)"
)
# The question's words are OR-ed (an AND of a whole question rarely matches one passage); ts_rank
# then favours passages holding more of them, headings most. Only the first MAX_QUERY_TERMS
# distinct words count (the subject comes first): a long mail otherwise becomes a huge OR that
# matches every passage (a 3,000-character mail, 173 words, against 5,000 chunks: 180 ms with
# every word, 49 ms with the first 32; a short question takes ~18 ms).
# Lexemes are quoted for tsquery input: quotes and backslashes doubled.
MAX_QUERY_TERMS = 32
_TSQUERY = (
    "SELECT coalesce(string_agg("
    "'''' || replace(replace(u.lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ' ORDER BY u.positions[1]"
    "), '')::tsquery AS query "
    f"FROM (SELECT lexeme, positions FROM unnest(to_tsvector('{TS_CONFIG}', :text)) "
    f"ORDER BY positions[1] LIMIT {MAX_QUERY_TERMS}) u"
)
_HNSW_SETTINGS = text(
    "SELECT set_config('hnsw.ef_search', :ef, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)"
)


@dataclass(frozen=True)
class SearchQuery:
    text: str
    vector: np.ndarray
    model_key: str
    tenant_id: uuid.UUID
    inbox_id: uuid.UUID | None = None


def _params(q: SearchQuery, n: int) -> dict[str, object]:
    return {"tenant": q.tenant_id, "inbox": q.inbox_id, "q": _vector_literal(q.vector), "text": q.text, "n": n}


def _vector_sql(dim: int, model_key: str, *, exact: bool = False) -> str:
    # The exact scan orders by the bare column, which the planner cannot match to the HNSW
    # index's `embedding::vector(dim)` expression: it reads the tenant's rows and sorts them.
    column = "c.embedding" if exact else f"(c.embedding::vector({dim}))"
    return f"""
        SELECT c.id, {column} <=> CAST(:q AS vector({dim})) AS dist
        FROM kb_chunks c
        WHERE {_SCOPE.format(model=_literal(model_key))}
        ORDER BY {column} <=> CAST(:q AS vector({dim}))
        LIMIT :n"""


def _one_pass_sql(dim: int, model_key: str) -> str:
    # MATERIALIZED: the tenant's rows are read and scored once; both top lists sort that result.
    return f"""
        WITH scored AS MATERIALIZED (
            SELECT c.id, c.embedding <=> CAST(:q AS vector({dim})) AS dist,
                   CASE WHEN c.tsv @@ tq.query THEN ts_rank(c.tsv, tq.query) END AS rank
            FROM kb_chunks c, ({_TSQUERY}) tq
            WHERE {_SCOPE.format(model=_literal(model_key))}
        ),
        v AS (SELECT id, dist, CAST(NULL AS real) AS rank FROM scored ORDER BY dist, id LIMIT :nv),
        t AS (SELECT id, CAST(NULL AS float8) AS dist, rank FROM scored
              WHERE rank IS NOT NULL ORDER BY rank DESC, id LIMIT :nt)
        {_passages_sql("SELECT * FROM v UNION ALL SELECT * FROM t", dim)}"""


def one_pass_passages(
    *, session: Session, query: SearchQuery, nv: int = VECTOR_CANDIDATES, nt: int = TEXT_CANDIDATES
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Both candidate lists (nearest first; best text match first) from one read of the tenant's rows."""
    params = {**_params(query, 0), "nv": nv, "nt": nt}
    rows = session.execute(text(_one_pass_sql(int(query.vector.shape[0]), query.model_key)), params).all()
    vector_rows = sorted((r for r in rows if r.vector_dist is not None), key=lambda r: (r.vector_dist, r.id))
    text_rows = sorted((r for r in rows if r.text_rank is not None), key=lambda r: (-r.text_rank, r.id))
    return vector_rows, text_rows


def tenant_chunks(session: Session, query: SearchQuery) -> int:
    """Chunks the query can see (the tenant's, in the inbox's scope, of the query's model)."""
    return visible_chunks(session, tenant_id=query.tenant_id, inbox_id=query.inbox_id, model_key=query.model_key)


def visible_chunks(session: Session, *, tenant_id: uuid.UUID, inbox_id: uuid.UUID | None, model_key: str) -> int:
    """Chunks a query in this scope can see (before there is a query vector to build)."""
    return int(session.execute(text(
        "SELECT coalesce(sum(chunk_count), 0) FROM kb_documents d "
        "WHERE d.tenant_id = :tenant AND d.embedding_model = :model "
        "AND (CAST(:inbox AS uuid) IS NULL OR d.inbox_id IS NULL OR d.inbox_id = :inbox)"),
        {"tenant": tenant_id, "model": model_key, "inbox": inbox_id}).scalar_one())


def exact_scan_pays(tenant_chunks: int, limit: int = EXACT_SCAN_MAX_CHUNKS) -> bool:
    return tenant_chunks <= limit


def _use_exact(session: Session, query: SearchQuery, method: VectorMethod) -> bool:
    if method != "auto":
        return method == "exact"
    return exact_scan_pays(tenant_chunks(session, query))


def _text_sql(model_key: str) -> str:
    return f"""
        SELECT c.id, ts_rank(c.tsv, tq.query) AS rank
        FROM kb_chunks c, ({_TSQUERY}) tq
        WHERE {_SCOPE.format(model=_literal(model_key))} AND c.tsv @@ tq.query
        ORDER BY rank DESC, c.id
        LIMIT :n"""


def _hnsw_settings(session: Session, n: int) -> None:
    # Iterative scan (pgvector >= 0.8): keep walking the graph until n rows pass the tenant filter.
    session.execute(_HNSW_SETTINGS, {"ef": str(max(EF_SEARCH, n))})


def vector_candidates(
    *, session: Session, query: SearchQuery, n: int = VECTOR_CANDIDATES, method: VectorMethod = "auto"
) -> list[tuple[uuid.UUID, float]]:
    """(chunk id, cosine similarity) of the n nearest chunks of this tenant, best first."""
    exact = _use_exact(session, query, method)
    if not exact:
        _hnsw_settings(session, n)
    sql = _vector_sql(int(query.vector.shape[0]), query.model_key, exact=exact)
    rows = session.execute(text(sql), _params(query, n)).all()
    return [(r.id, 1 - float(r.dist)) for r in sorted(rows, key=lambda r: r.dist)]


def text_candidates(
    *, session: Session, query: SearchQuery, n: int = TEXT_CANDIDATES
) -> list[tuple[uuid.UUID, float]]:
    """(chunk id, ts_rank) of the n best full-text matches of this tenant, best first."""
    return [(r.id, float(r.rank)) for r in session.execute(text(_text_sql(query.model_key)), _params(query, n))]


def _passages_sql(inner: str, dim: int) -> str:
    return f"""
        SELECT c.id, c.document_id, c.heading, c.text, d.source, d.url, d.title,
               found.dist AS vector_dist, found.rank AS text_rank,
               1 - ((c.embedding::vector({dim})) <=> CAST(:q AS vector({dim}))) AS similarity
        FROM ({inner}) found
        JOIN kb_chunks c ON c.id = found.id AND c.tenant_id = :tenant
        JOIN kb_documents d ON d.id = c.document_id AND d.tenant_id = :tenant"""


def vector_passages(
    *, session: Session, query: SearchQuery, n: int = VECTOR_CANDIDATES, method: VectorMethod = "auto"
) -> list[Row[Any]]:
    """The n nearest passages with their details, nearest first."""
    dim = int(query.vector.shape[0])
    exact = _use_exact(session, query, method)
    if not exact:
        _hnsw_settings(session, n)
    inner = f"SELECT id, dist, CAST(NULL AS real) AS rank FROM ({_vector_sql(dim, query.model_key, exact=exact)}) v"
    rows = session.execute(text(_passages_sql(inner, dim)), _params(query, n)).all()
    return sorted(rows, key=lambda r: r.vector_dist)


def text_passages(*, session: Session, query: SearchQuery, n: int = TEXT_CANDIDATES) -> list[Row[Any]]:
    """The n best full-text passages with their details, best first."""
    if not query.text.strip():
        return []
    dim = int(query.vector.shape[0])
    inner = f"SELECT id, CAST(NULL AS float8) AS dist, rank FROM ({_text_sql(query.model_key)}) t"
    rows = session.execute(text(_passages_sql(inner, dim)), _params(query, n)).all()
    return sorted(rows, key=lambda r: (-r.text_rank, r.id))


def fuse(vector_rows: Sequence[Row[Any]], text_rows: Sequence[Row[Any]], *, top_k: int) -> list[Hit]:
    """RRF of the two ranked passage lists; a passage found by both keeps its text rank."""
    rank = {r.id: float(r.text_rank) for r in text_rows}
    rows = {r.id: r for r in [*text_rows, *vector_rows]}
    fused = reciprocal_rank_fusion([[r.id for r in vector_rows], [r.id for r in text_rows]])[:top_k]
    return [_hit(rows[cid], score, rank.get(cid)) for cid, score in fused]


def hybrid_search(
    *, session: Session, query: SearchQuery, top_k: int = 5, candidates: int | None = None
) -> list[Hit]:
    """Hybrid search in one session: up to top_k passages fused from the two candidate lists
    (VECTOR_CANDIDATES and TEXT_CANDIDATES deep, as drafts use them, or `candidates` each)."""
    nv, nt = candidates or VECTOR_CANDIDATES, candidates or TEXT_CANDIDATES
    if exact_scan_pays(tenant_chunks(session, query)):
        return fuse(*one_pass_passages(session=session, query=query, nv=nv, nt=nt), top_k=top_k)
    return fuse(vector_passages(session=session, query=query, n=nv, method="hnsw"),
                text_passages(session=session, query=query, n=nt), top_k=top_k)


def _hit(r: Row[Any], score: float, text_rank: float | None) -> Hit:
    return Hit(
        chunk_id=r.id, document_id=r.document_id, source=r.source, url=r.url, title=r.title, heading=r.heading,
        text=r.text, score=score, similarity=float(r.similarity), text_rank=text_rank,
    )


def documents_in_order(hits: Sequence[Hit]) -> list[str]:
    """Distinct document sources in the order their best passage ranks."""
    return list(dict.fromkeys(h.source for h in hits))
