"""`Idempotency-Key` on POST: the same key and body replay the first response; another body is 422.

How it works (AdminRoute wraps every admin endpoint):
1. Before the handler, a claim row (api key, Idempotency-Key, hash of method+path+body) is
   committed on its own. A concurrent duplicate waits on the unique index, then sees the claim:
   in flight → 409 (retry shortly), done → replay, other body → 422.
2. The handler runs; its response is written onto the claim *in the handler's own transaction*
   (the request session commits after this wrapper), so a stored response exists exactly when
   the action committed.
3. The handler raised → the claim is deleted and the error answered as usual: errors are not
   replayed, a retry runs again. A claim left in flight by a crash is taken over after
   IN_FLIGHT_TIMEOUT. Records expire after RETENTION (24 h, the usual client retry horizon).
Replays carry `Idempotent-Replayed: true`. Stored bodies are encrypted (core.crypto): a replayed
POST may carry a secret shown once (a new API key), which must not sit in the database in clear.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from admin_api.auth import Principal, resolve_principal
from admin_api.problems import IDEMPOTENCY_IN_FLIGHT, IDEMPOTENCY_MISMATCH, INVALID_INPUT, ProblemError
from core.crypto import SecretBox
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import IdempotencyRecord

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
IN_FLIGHT_TIMEOUT = timedelta(minutes=2)
MAX_KEY_CHARS = 255
_REPLAYED_HEADERS = ("content-type", "location", "etag", "link")


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def _claim(runtime: Runtime, principal: Principal, key: str, digest: str) -> IdempotencyRecord | uuid.UUID:
    """A new claim's id, or the existing record (done, in flight or another body)."""
    now = datetime.now(UTC)
    with system_scope(runtime.factory) as session:
        # Expired records and abandoned claims of this key free the name again.
        session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == principal.key_id, IdempotencyRecord.key == key,
            (IdempotencyRecord.expires_at <= now)
            | (IdempotencyRecord.status_code.is_(None) & (IdempotencyRecord.created_at <= now - IN_FLIGHT_TIMEOUT)),
        ))
        claim_id = uuid.uuid4()
        inserted = session.execute(
            insert(IdempotencyRecord).values(
                id=claim_id, tenant_id=principal.tenant_id, api_key_id=principal.key_id, key=key,
                request_hash=digest, response_headers={}, created_at=now, expires_at=now + RETENTION,
            ).on_conflict_do_nothing(index_elements=["api_key_id", "key"]).returning(IdempotencyRecord.id)
        ).scalar_one_or_none()
        if inserted is not None:
            return claim_id
        existing = session.execute(select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == principal.key_id, IdempotencyRecord.key == key)).scalar_one()
        session.expunge(existing)
        return existing


def _release(runtime: Runtime, claim_id: uuid.UUID) -> None:
    with system_scope(runtime.factory) as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == claim_id))


def _store(session: Session, box: SecretBox, claim_id: uuid.UUID, response: Response) -> None:
    headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS}
    sealed = box.encrypt(base64.b64encode(bytes(response.body)).decode("ascii")).encode("ascii")
    session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == claim_id).values(
        status_code=response.status_code, response_body=sealed, response_headers=headers))


def _replay(box: SecretBox, record: IdempotencyRecord) -> Response:
    headers = dict(record.response_headers)
    headers["Idempotent-Replayed"] = "true"
    body = base64.b64decode(box.decrypt(record.response_body.decode("ascii"))) if record.response_body else b""
    return Response(content=body, status_code=record.status_code or 200, headers=headers)


async def run_idempotent(
    request: Request, handler: Callable[[Request], Coroutine[Any, Any, Response]], key: str
) -> Response:
    if not 1 <= len(key) <= MAX_KEY_CHARS or not key.isprintable():
        raise ProblemError(INVALID_INPUT, f"{HEADER} must be 1-{MAX_KEY_CHARS} printable characters")
    principal = await run_in_threadpool(resolve_principal, request, request.headers.get("authorization"))
    runtime: Runtime = request.app.state.runtime
    box: SecretBox = request.app.state.secret_box
    digest = request_hash(request.method, request.url.path, await request.body())
    claimed = await run_in_threadpool(_claim, runtime, principal, key, digest)
    if isinstance(claimed, IdempotencyRecord):
        if claimed.request_hash != digest:
            raise ProblemError(IDEMPOTENCY_MISMATCH, f"this {HEADER} was first used with another request; "
                             "use a new key for a new request")
        if claimed.status_code is None:
            raise ProblemError(IDEMPOTENCY_IN_FLIGHT, "the first request with this key is still running; retry "
                             "shortly", headers={"Retry-After": "1"})
        return _replay(box, claimed)
    try:
        response = await handler(request)
        session: Session | None = getattr(request.state, "db_session", None)
        if session is None or response.status_code >= 500 or not hasattr(response, "body"):
            await run_in_threadpool(_release, runtime, claimed)
        else:
            await run_in_threadpool(_store, session, box, claimed, response)
    except BaseException:
        await run_in_threadpool(_release, runtime, claimed)
        raise
    return response


class AdminRoute(APIRoute):
    """The route class of every admin router: adds Idempotency-Key handling to POST."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            key = request.headers.get(HEADER)
            if request.method != "POST" or key is None:
                return await handler(request)
            return await run_idempotent(request, handler, key)

        return route_handler
