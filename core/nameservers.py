"""THREADLINE_DNS_SERVERS: the name servers mail authentication asks, read once and probed by doctor.

Parsing is pure and runs in the settings model, so a malformed value stops `threadline up` with
a plain message instead of failing every mail later. The probe is `threadline doctor`'s one
query per server.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.rdatatype

Nameserver = tuple[str, int]


def parse_nameservers(text: str) -> tuple[Nameserver, ...]:
    """Comma-separated ``ip``, ``ip:port``, ``[ipv6]:port`` or a bare IPv6 address; empty = the
    system resolver (``()``). Addresses, not names: resolving the resolver would need a resolver.
    Raises ValueError naming the bad item."""
    servers: list[Nameserver] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, port_text = item, ""
        if item.startswith("["):
            host, closed, rest = item[1:].partition("]")
            if not closed or (rest and not rest.startswith(":")):
                raise ValueError(f"{item!r} is not [ipv6]:port")
            port_text = rest[1:]
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address (optionally :port)") from None
        port = 53
        if port_text:
            # isascii: str.isdigit also accepts digits int() refuses, such as '²'.
            if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
                raise ValueError(f"{item!r} has no valid port (1-65535)")
            port = int(port_text)
        servers.append((host, port))
    return tuple(servers)


def display(server: Nameserver) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ProbeResult:
    server: Nameserver
    answered: bool
    detail: str  # why not, in plain words (empty when it answered)


def probe(server: Nameserver, *, timeout: float = 1.5) -> ProbeResult:
    """One UDP query (the root's NS) to one server: any well-formed reply to it counts as an answer.

    The socket is connected, so a closed port on a reachable host reports 'connection refused'
    at once (ICMP port unreachable) instead of waiting out the timeout."""
    host, port = server
    query = dns.message.make_query(".", dns.rdatatype.NS)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.connect((host, port))
            sock.send(query.to_wire())
            wire = sock.recv(65535)
    except TimeoutError:
        return ProbeResult(server, False, f"no reply within {timeout:g} s")
    except ConnectionRefusedError:
        return ProbeResult(server, False, "connection refused: nothing listens on that port")
    except OSError as exc:
        return ProbeResult(server, False, f"{type(exc).__name__}: {exc.strerror or exc}")
    try:
        reply = dns.message.from_wire(wire)
    except dns.exception.DNSException as exc:
        return ProbeResult(server, False, f"the reply is not DNS ({type(exc).__name__})")
    if not query.is_response(reply):
        return ProbeResult(server, False, "the reply does not match the query")
    return ProbeResult(server, True, "")
