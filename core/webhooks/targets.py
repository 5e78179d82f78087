"""Where a webhook may go: http(s) only, and never our own network unless the operator allows it.

A webhook URL is chosen by a tenant admin but fetched by our worker, from inside our network: a
URL naming 127.0.0.1, 10.x, the cloud metadata address (169.254.169.254) or a name resolving to
one would let a tenant probe or hit internal services (SSRF). So the check runs twice: on the URL
when it is saved (literal addresses, `localhost`), and on the resolved addresses at every delivery
(a name may change what it resolves to). The delivery then connects to the address it checked,
not to a second lookup (DNS rebinding), with the host name kept for Host and TLS (SNI, certificate).
THREADLINE_WEBHOOK_ALLOW_PRIVATE turns the address rule off (tests, single-host installs).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from core.errors import InvalidInput

MAX_URL_LENGTH = 2048

Resolver = Callable[[str, int], list[str]]


class TargetRefused(InvalidInput):
    """The URL or the address it resolves to is not one we deliver to."""


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL as stored, or TargetRefused with a sentence an admin can act on."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs receive webhooks")
    host = parts.hostname
    if not host:
        raise TargetRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("no credentials in the URL: verify the Threadline-Signature header instead")
    if port == 0:
        raise TargetRefused("port 0 is not a port")
    if not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise TargetRefused("webhooks are not delivered to loopback addresses")
        literal = _literal_address(host)
        if literal is not None and not is_public(literal):
            raise TargetRefused("webhooks are not delivered to loopback, private or link-local addresses")
    return url


def _literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


@dataclass(frozen=True)
class Target:
    """The URL to connect to (an address, not a name) and the name for Host and TLS."""

    connect_url: str
    host_header: str
    tls_server_name: str | None


def resolve(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> Target:
    """Resolve the stored URL once, refuse private answers, and pin the connection to one address."""
    check_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [host] if _literal_address(host) else (resolver or _system_resolver)(host, port)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise ConnectionError(f"{host} resolves to no address")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise TargetRefused(f"{host} resolves to a loopback, private or link-local address")
    address = addresses[0]
    netloc = (f"[{address}]" if ":" in address else address) + (f":{parts.port}" if parts.port else "")
    pinned = SplitResult(parts.scheme, netloc, parts.path or "/", parts.query, "")
    return Target(connect_url=urlunsplit(pinned), host_header=parts.netloc,
                  tls_server_name=host if parts.scheme == "https" else None)
