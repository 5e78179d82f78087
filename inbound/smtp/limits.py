"""Per-client connection and message-rate limits (pure bookkeeping, no I/O)."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, field


@dataclass
class ClientLimits:
    max_connections: int
    messages_per_minute: int
    _connections: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _recent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def open(self, ip: str) -> bool:
        """Count a new connection; False when the client already has too many (answer 421)."""
        if self._connections[ip] >= self.max_connections:
            return False
        self._connections[ip] += 1
        return True

    def close(self, ip: str) -> None:
        self._connections[ip] = max(0, self._connections[ip] - 1)
        if not self._connections[ip]:
            del self._connections[ip]

    def allow_message(self, ip: str, now: float | None = None) -> bool:
        """Sliding one-minute window; False means answer 450 and let the client retry later."""
        now = time.monotonic() if now is None else now
        window = self._recent[ip]
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.messages_per_minute:
            return False
        window.append(now)
        return True
