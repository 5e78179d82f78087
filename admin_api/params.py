"""Path parameters shared by routes, bounded to what the database columns hold: an out-of-range
number is a 422 problem at the edge, never a database error (found by schemathesis)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

INT4_MAX = 2_147_483_647
INT8_MAX = 9_223_372_036_854_775_807

TicketNumber = Annotated[int, Path(ge=1, le=INT4_MAX, description="the ticket's number in its tenant")]
JobId = Annotated[int, Path(ge=1, le=INT8_MAX, description="the job's outbox row id")]
