"""DNS for sender authentication: a small port, a dnspython adapter, a static zone for tests.

Every check asks DNS through ``DnsBudget``, which gives one message a shared time and lookup
allowance, so a hostile domain (slow servers, long SPF include chains) costs bounded time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

import dns.exception
import dns.nameserver
import dns.resolver

from core import nameservers
from core.errors import ConfigurationError, TemporaryFailure

_T = TypeVar("_T")


class DnsTempError(TemporaryFailure):
    """A lookup timed out or the server failed: a *temperror* (RFC 7208 §2.6.6, RFC 6376 §3.9)."""


class DnsResolver(Protocol):
    """Lookups the checks need. A missing name or record type is an empty list, never an error.

    ``timeout`` is the time left for this lookup, in seconds. Raise ``DnsTempError`` on a
    timeout or server failure.
    """

    def txt(self, name: str, *, timeout: float) -> list[str]:
        """One string per TXT record, its character-strings joined (RFC 7208 §3.3)."""
        ...

    def a(self, name: str, *, timeout: float) -> list[str]: ...

    def aaaa(self, name: str, *, timeout: float) -> list[str]: ...

    def mx(self, name: str, *, timeout: float) -> list[tuple[int, str]]:
        """(preference, exchange) pairs, exchange without the trailing dot."""
        ...

    def ptr(self, name: str, *, timeout: float) -> list[str]:
        """Targets of ``name``, an in-addr.arpa / ip6.arpa name, without the trailing dot."""
        ...


def normalise_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


class StaticDns:
    """A zone held in a dict, for tests: ``{"example.com": {"TXT": ["v=spf1 -all"]}}``.

    MX values are written ``"10 mx.example.com"``. Names in ``failing`` raise
    ``DnsTempError``; ``queries`` records every lookup as (TYPE, name).
    """

    def __init__(self, zone: Mapping[str, Mapping[str, Sequence[str]]], *, failing: Iterable[str] = ()) -> None:
        self._zone = {normalise_name(n): {t.upper(): list(v) for t, v in rr.items()} for n, rr in zone.items()}
        self._failing = frozenset(normalise_name(n) for n in failing)
        self.queries: list[tuple[str, str]] = []

    def _get(self, name: str, rtype: str) -> list[str]:
        name = normalise_name(name)
        self.queries.append((rtype, name))
        if name in self._failing:
            raise DnsTempError(f"{name}: SERVFAIL (static zone)")
        return list(self._zone.get(name, {}).get(rtype, []))

    def txt(self, name: str, *, timeout: float) -> list[str]:
        return self._get(name, "TXT")

    def a(self, name: str, *, timeout: float) -> list[str]:
        return self._get(name, "A")

    def aaaa(self, name: str, *, timeout: float) -> list[str]:
        return self._get(name, "AAAA")

    def mx(self, name: str, *, timeout: float) -> list[tuple[int, str]]:
        pairs = (value.split(None, 1) for value in self._get(name, "MX"))
        return [(int(pref), normalise_name(host)) for pref, host in pairs]

    def ptr(self, name: str, *, timeout: float) -> list[str]:
        return [normalise_name(v) for v in self._get(name, "PTR")]


def parse_nameservers(text: str) -> tuple[tuple[str, int], ...]:
    """``THREADLINE_DNS_SERVERS`` as (address, port) pairs (core.nameservers; the settings model
    already refused a malformed value at startup). Raises ConfigurationError naming the bad item."""
    try:
        return nameservers.parse_nameservers(text)
    except ValueError as exc:
        raise ConfigurationError(f"THREADLINE_DNS_SERVERS: {exc}") from None


class DnsPythonResolver:
    """The real resolver: dnspython with the system's (or given) name servers and a TTL-honouring LRU cache.

    ``nameservers`` are addresses (port 53) or (address, port) pairs.
    """

    def __init__(
        self, *, nameservers: Sequence[str | tuple[str, int]] | None = None, cache_size: int = 2048
    ) -> None:
        try:
            self._resolver = dns.resolver.Resolver(configure=nameservers is None)
        except dns.resolver.NoResolverConfiguration as exc:
            raise ConfigurationError(f"no DNS resolver configured: {exc}") from exc
        if nameservers is not None:
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*((ns, 53) if isinstance(ns, str) else ns)) for ns in nameservers
            ]
        # EDNS0 with the DNS-flag-day size: a 2048-bit DKIM key fits one UDP answer (TCP on truncation).
        self._resolver.use_edns(0, 0, 1232)
        self._resolver.cache = dns.resolver.LRUCache(cache_size)

    def _resolve(self, name: str, rtype: str, timeout: float) -> list[object]:
        try:
            answer = self._resolver.resolve(
                name, rtype, lifetime=max(timeout, 0.01), search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise DnsTempError(f"{name} {rtype}: {exc}") from exc
        except dns.exception.DNSException:
            return []  # a name that cannot exist (empty or over-long label, bad IDNA): nothing there
        return list(answer)

    def txt(self, name: str, *, timeout: float) -> list[str]:
        return [
            b"".join(r.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
            for r in self._resolve(name, "TXT", timeout)
        ]

    def a(self, name: str, *, timeout: float) -> list[str]:
        return [r.address for r in self._resolve(name, "A", timeout)]  # type: ignore[attr-defined]

    def aaaa(self, name: str, *, timeout: float) -> list[str]:
        return [r.address for r in self._resolve(name, "AAAA", timeout)]  # type: ignore[attr-defined]

    def mx(self, name: str, *, timeout: float) -> list[tuple[int, str]]:
        return [
            (r.preference, r.exchange.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
            for r in self._resolve(name, "MX", timeout)
        ]

    def ptr(self, name: str, *, timeout: float) -> list[str]:
        return [r.target.to_text(omit_final_dot=True) for r in self._resolve(name, "PTR", timeout)]  # type: ignore[attr-defined]


class DnsBudget:
    """One message's share of DNS: a cap on the time spent waiting for answers and on lookups.

    Only time inside lookups counts, so a slow CPU (a big body to hash) never turns into a
    DNS temperror. Past either cap, lookups raise ``DnsTempError`` and the check in progress
    ends as temperror instead of stalling the worker (RFC 7208 §4.6.4 allows 20 s per SPF
    check; a helpdesk annotation is worth far less).
    """

    def __init__(
        self,
        resolver: DnsResolver,
        *,
        seconds: float,
        max_lookups: int = 48,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._clock = clock
        self._left_seconds = seconds
        self._left_lookups = max_lookups

    def _timed(self, name: str, lookup: Callable[[float], _T]) -> _T:
        if self._left_seconds <= 0 or self._left_lookups <= 0:
            raise DnsTempError(f"the DNS budget for this message ran out before looking up {name}")
        self._left_lookups -= 1
        start = self._clock()
        try:
            return lookup(self._left_seconds)
        finally:
            self._left_seconds -= self._clock() - start

    def txt(self, name: str) -> list[str]:
        return self._timed(name, lambda timeout: self._resolver.txt(name, timeout=timeout))

    def a(self, name: str) -> list[str]:
        return self._timed(name, lambda timeout: self._resolver.a(name, timeout=timeout))

    def aaaa(self, name: str) -> list[str]:
        return self._timed(name, lambda timeout: self._resolver.aaaa(name, timeout=timeout))

    def mx(self, name: str) -> list[tuple[int, str]]:
        return self._timed(name, lambda timeout: self._resolver.mx(name, timeout=timeout))

    def ptr(self, name: str) -> list[str]:
        return self._timed(name, lambda timeout: self._resolver.ptr(name, timeout=timeout))
