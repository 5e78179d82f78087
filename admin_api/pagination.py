"""Cursor pagination over (created_at, id), newest first.

A cursor is opaque to clients (base64url of JSON): the (created_at, id) of the last item of a
page. Keyset pagination stays fast at any depth and stable while rows are added, unlike OFFSET.
Lists answer `{"items": [...], "next_cursor": "..." | null}` and, when there is a next page, a
`Link: <...?cursor=...>; rel="next"` header (RFC 8288) keeping the other query parameters.

In a route:
    after = decode_cursor(cursor, id_type=uuid.UUID)
    rows = service.list_x(session=session, after=after, limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=XPublic.model_validate)
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel

from admin_api.problems import INVALID_CURSOR, ProblemError

T = TypeVar("T")
IdT = TypeVar("IdT", uuid.UUID, int)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> Any: ...


def encode_cursor(created_at: datetime, id_: uuid.UUID | int) -> str:
    raw = json.dumps([created_at.isoformat(), str(id_) if isinstance(id_, uuid.UUID) else id_])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, id_type: type[IdT]) -> tuple[datetime, IdT] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, id_ = json.loads(raw)
        return datetime.fromisoformat(created), id_type(id_)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ProblemError(INVALID_CURSOR, "use the next_cursor of a previous page as it is") from None


def paginate(
    request: Request, response: Response, rows: Sequence[_Keyed], *, limit: int, to_public: Callable[[Any], T]
) -> Page[T]:
    """`rows` were fetched with limit + 1: the extra row only says that a next page exists."""
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    if next_cursor:
        url = request.url.include_query_params(cursor=next_cursor, limit=limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return Page[T](items=[to_public(r) for r in page], next_cursor=next_cursor)
