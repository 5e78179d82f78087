"""`ETag` on single-resource GETs and `If-Match` on PATCH/PUT/DELETE (RFC 9110 §8.8.3, §13.1.1).

The tag is a hash of the resource's public JSON, so it changes exactly when what the client saw
changes, with no version column. A write loads the row FOR UPDATE, compares the client's
If-Match with the current tag (412 when stale), then applies the change: two admins editing
the same inbox cannot silently overwrite each other. If-Match is optional (no 428).
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel

from admin_api.problems import PRECONDITION_FAILED, ProblemError


def etag_of(resource: BaseModel) -> str:
    return '"' + hashlib.sha256(resource.model_dump_json().encode()).hexdigest()[:32] + '"'


def set_etag(response: Response, resource: BaseModel) -> None:
    response.headers["ETag"] = etag_of(resource)


def check_if_match(request: Request, current: BaseModel) -> None:
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return
    # Weak comparison is fine here: our tags are strong, and W/ only comes from intermediaries.
    offered = {t.strip().removeprefix("W/") for t in header.split(",")}
    if etag_of(current) not in offered:
        raise ProblemError(PRECONDITION_FAILED, "the resource changed since you read it: GET it again, re-apply "
                         "your change, and send the new ETag in If-Match",
                         headers={"ETag": etag_of(current)})
