"""Errors raised by the pure email layer."""

from __future__ import annotations

from core.errors import InvalidInput


class UnparseableEmail(InvalidInput):
    """The bytes are not an RFC 5322 message at all (no header, nothing to read).

    The caller keeps the raw bytes and flags the record for an operator; it is never
    dropped (architecture §5: a failed step leaves the raw record visible and replayable).
    """
