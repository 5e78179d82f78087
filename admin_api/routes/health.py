"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

import redis
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import text

from admin_api.deps import RuntimeDep
from core.db.session import ping, system_scope
from core.runtime import Runtime

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


_OUTBOX_SQL = text("SELECT status, count(*) FROM outbox GROUP BY status")
_RAW_SQL = text("SELECT status, count(*) FROM raw_inbound GROUP BY status")
_TICKETS_SQL = text("SELECT status, count(*) FROM tickets GROUP BY status")


def _collect(runtime: Runtime) -> bytes:
    # Gauges read from Postgres at scrape time, so every process's work is visible here.
    reg = CollectorRegistry()
    outbox = Gauge("threadline_outbox_rows", "Outbox rows by status", ["status"], registry=reg)
    raw = Gauge("threadline_raw_inbound", "Raw inbound records by status", ["status"], registry=reg)
    tickets = Gauge("threadline_tickets", "Tickets by status", ["status"], registry=reg)
    up = Gauge("threadline_database_up", "1 when the database answered this scrape", registry=reg)
    try:
        with system_scope(runtime.factory) as session:
            for gauge, sql in ((outbox, _OUTBOX_SQL), (raw, _RAW_SQL), (tickets, _TICKETS_SQL)):
                for status, count in session.execute(sql):
                    gauge.labels(status=status).set(count)
        up.set(1)
    except Exception:  # the scrape still answers: database_up says what happened
        up.set(0)
    return generate_latest(reg)


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    body = await asyncio.to_thread(_collect, runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
