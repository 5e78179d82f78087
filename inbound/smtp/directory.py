"""Which inbox owns an address: a short-lived cache in front of a system-scope lookup, so a
flood of RCPTs does not become a flood of queries."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.db.session import system_scope
from core.tenancy.service import inbox_for_address


@dataclass(frozen=True)
class Route:
    tenant_id: uuid.UUID
    inbox_id: uuid.UUID
    address: str


class InboxDirectory:
    def __init__(self, factory: sessionmaker[Session], *, ttl: float = 30.0, negative_ttl: float = 5.0) -> None:
        self._factory = factory
        self._ttl, self._negative_ttl = ttl, negative_ttl
        self._cache: dict[str, tuple[float, Route | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, address: str) -> Route | None:
        """Raises on database errors (the caller answers 451, never 250 or 550)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(address)
            if hit and hit[0] > now:
                return hit[1]
        with system_scope(self._factory) as session:
            inbox = inbox_for_address(session=session, address=address)
            route = Route(inbox.tenant_id, inbox.id, inbox.address) if inbox else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[address] = (now + (self._ttl if route else self._negative_ttl), route)
        return route
