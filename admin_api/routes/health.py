"""Liveness, readiness and Prometheus metrics (behind THREADLINE_METRICS_TOKEN)."""

from __future__ import annotations

import asyncio
import hmac

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import text

from admin_api.deps import RuntimeDep
from core.db.session import ping, system_scope
from core.runtime import Runtime
from core.settings import Settings

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check(runtime: Runtime) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        ping(runtime.engine)
        checks["database"] = "ok"
    except Exception as exc:  # reported in the body, not raised: this is the health check
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if runtime.redis_url:
        try:
            redis.Redis.from_url(runtime.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
            checks["redis"] = "ok"
        except (redis.RedisError, OSError) as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    return checks


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks = await asyncio.to_thread(_check, runtime)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


# Cheap at any size: exact counts only over the small sets an operator acts on (through the
# status indexes, capped), and planner estimates (pg_class.reltuples) for table sizes.
_ACTIONABLE_CAP = 100_000
_OUTBOX_SQL = text(
    "SELECT status, count(*) FROM (SELECT status FROM outbox WHERE status IN ('pending', 'enqueued', 'running', 'dead') "
    "LIMIT :cap) s GROUP BY status"
)
_RAW_SQL = text(
    "SELECT status, count(*) FROM (SELECT status FROM raw_inbound WHERE status IN ('received', 'failed', 'quarantined') "
    "LIMIT :cap) s GROUP BY status"
)
_ESTIMATES_SQL = text(
    "SELECT relname, greatest(reltuples, 0)::bigint FROM pg_class "
    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname = ANY(:tables)"
)
_ESTIMATED_TABLES = ["tickets", "messages", "outbox", "raw_inbound", "attachments", "contacts"]


def _collect(runtime: Runtime) -> bytes:
    # Gauges read from Postgres at scrape time, so every process's work is visible here.
    reg = CollectorRegistry()
    outbox = Gauge("threadline_outbox_rows", "Outbox rows not done, by status (capped)", ["status"], registry=reg)
    raw = Gauge("threadline_raw_inbound", "Raw inbound records awaiting or needing attention, by status (capped)",
                ["status"], registry=reg)
    rows = Gauge("threadline_table_rows_estimate", "Rows per table, planner estimate", ["table"], registry=reg)
    up = Gauge("threadline_database_up", "1 when the database answered this scrape", registry=reg)
    try:
        with system_scope(runtime.factory) as session:
            for gauge, sql in ((outbox, _OUTBOX_SQL), (raw, _RAW_SQL)):
                for status, count in session.execute(sql, {"cap": _ACTIONABLE_CAP}):
                    gauge.labels(status=status).set(count)
            for table, estimate in session.execute(_ESTIMATES_SQL, {"tables": _ESTIMATED_TABLES}):
                rows.labels(table=table).set(estimate)
        up.set(1)
    except Exception:  # the scrape still answers: database_up says what happened
        up.set(0)
    return generate_latest(reg)


def _bearer_matches(request: Request, settings: Settings) -> bool:
    assert settings.metrics_token is not None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    # No token configured = metrics off: job states and table sizes are not for anyone who asks.
    if runtime.settings.metrics_token is None:
        return Response(status_code=404)
    if not _bearer_matches(request, runtime.settings):
        return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = await asyncio.to_thread(_collect, runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
