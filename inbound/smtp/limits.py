"""Per-client SMTP limits: pure bookkeeping (no I/O, no clock of its own beyond a default).

Clients in the trusted networks (our MX, a forwarding relay) are exempt: behind a relay every
mail arrives from one address, so per-IP limits would defer real mail. Everyone else is limited
per IP (connections, message rate, unknown-recipient attempts), per connection (messages) and
per message (recipients). Every refusal is a 4xx the sender retries; nothing here drops mail.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import StrEnum

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 5321 §4.5.3.1.8: a server must buffer at least 100 recipients; beyond our cap the answer
# is 452 (§4.5.3.1.10) and the client sends the rest in a later transaction.
RECIPIENTS_PER_MESSAGE = 100
# Exim's smtp_accept_max_per_connection idea, lower: an honest MTA reconnects after a 450.
MESSAGES_PER_CONNECTION = 100
# A few typos are honest; more 550s in ten minutes look like address harvesting.
UNKNOWN_RECIPIENTS_ALLOWED = 5
UNKNOWN_RECIPIENT_WINDOW_SECONDS = 600.0
# Bounds memory under a flood from many addresses; the least recently active client is forgotten.
MAX_TRACKED_CLIENTS = 10_000


class Limit(StrEnum):
    """Which limit refused a client; the SMTP handler maps each to its reply."""

    CONNECTIONS = "connections"
    MESSAGE_RATE = "message_rate"
    MESSAGES_PER_CONNECTION = "messages_per_connection"
    RECIPIENTS_PER_MESSAGE = "recipients_per_message"
    UNKNOWN_RECIPIENTS = "unknown_recipients"


def parse_networks(spec: str) -> tuple[Network, ...]:
    """`"10.0.0.0/8, ::1/128"` → networks; raises ValueError on a typo (fail fast at startup)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    """False for anything that is not an IP address (a unix socket peer is not trusted by accident)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(addr in net for net in networks)


@dataclass
class SlidingWindows:
    """Event times per key within the last `window` seconds, at most `max_keys` keys.

    Keys are kept in order of their last event, so expired keys sit at the front and are
    dropped as new events arrive; when still full, the least recently active key goes.
    """

    window: float
    max_keys: int
    _events: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def count(self, key: str, now: float) -> int:
        events = self._events.get(key)
        if events is None:
            return 0
        while events and events[0] <= now - self.window:
            events.popleft()
        return len(events)

    def add(self, key: str, now: float) -> None:
        self._forget_expired(now)
        events = self._events.get(key)
        if events is None:
            while len(self._events) >= self.max_keys:
                self._events.popitem(last=False)
            events = self._events[key] = deque()
        events.append(now)
        self._events.move_to_end(key)

    def __len__(self) -> int:
        return len(self._events)

    def _forget_expired(self, now: float) -> None:
        while self._events:
            oldest = next(iter(self._events.values()))
            if oldest and oldest[-1] > now - self.window:
                return
            self._events.popitem(last=False)


@dataclass(frozen=True)
class LimitPolicy:
    max_connections_per_ip: int
    messages_per_minute: int
    trusted_networks: tuple[Network, ...]
    messages_per_connection: int = MESSAGES_PER_CONNECTION
    recipients_per_message: int = RECIPIENTS_PER_MESSAGE
    unknown_recipients_allowed: int = UNKNOWN_RECIPIENTS_ALLOWED
    unknown_recipient_window: float = UNKNOWN_RECIPIENT_WINDOW_SECONDS
    max_tracked_clients: int = MAX_TRACKED_CLIENTS


class ClientLimits:
    """Counts and decides; each check returns the `Limit` that refuses, or None to go ahead."""

    def __init__(self, policy: LimitPolicy) -> None:
        self.policy = policy
        self._connections: dict[str, int] = {}  # only open connections: bounded by open sockets
        self._messages = SlidingWindows(60.0, policy.max_tracked_clients)
        self._unknown = SlidingWindows(policy.unknown_recipient_window, policy.max_tracked_clients)

    def trusted(self, ip: str) -> bool:
        return in_networks(ip, self.policy.trusted_networks)

    def open(self, ip: str) -> Limit | None:
        """Count a new connection; pair every successful open with one `close`."""
        if self.trusted(ip):
            return None
        if self._connections.get(ip, 0) >= self.policy.max_connections_per_ip:
            return Limit.CONNECTIONS
        self._connections[ip] = self._connections.get(ip, 0) + 1
        return None

    def close(self, ip: str) -> None:
        left = self._connections.get(ip, 0) - 1
        if left > 0:
            self._connections[ip] = left
        else:
            self._connections.pop(ip, None)

    def check_message(self, ip: str, *, messages_in_connection: int, now: float | None = None) -> Limit | None:
        """At MAIL: a new transaction; counted towards the per-minute rate when allowed."""
        if self.trusted(ip):
            return None
        if messages_in_connection >= self.policy.messages_per_connection:
            return Limit.MESSAGES_PER_CONNECTION
        now = time.monotonic() if now is None else now
        if self._messages.count(ip, now) >= self.policy.messages_per_minute:
            return Limit.MESSAGE_RATE
        self._messages.add(ip, now)
        return None

    def check_recipient(self, ip: str, *, recipients_in_message: int, now: float | None = None) -> Limit | None:
        """At RCPT, before the lookup, so a client over its unknown-recipient budget learns nothing."""
        if self.trusted(ip):
            return None
        now = time.monotonic() if now is None else now
        if self._unknown.count(ip, now) >= self.policy.unknown_recipients_allowed:
            return Limit.UNKNOWN_RECIPIENTS
        if recipients_in_message >= self.policy.recipients_per_message:
            return Limit.RECIPIENTS_PER_MESSAGE
        return None

    def unknown_recipient(self, ip: str, now: float | None = None) -> None:
        """Record a 550 for an address nobody owns."""
        if not self.trusted(ip):
            self._unknown.add(ip, time.monotonic() if now is None else now)

    def tracked_clients(self) -> int:
        return len(self._connections) + len(self._messages) + len(self._unknown)
