"""A real DNS server for tests: UDP and TCP on 127.0.0.1, TXT records from a dict.

Answers the wire protocol with dnspython's ``dns.message``: TXT for the names in the zone
(DKIM ``sel._domainkey.domain``, ``_dmarc.domain``, SPF at ``domain``), NOERROR with no
answer for other types of a known name, NXDOMAIN otherwise. A UDP answer larger than the
client allows (512 bytes without EDNS) goes back truncated (TC), so the client retries over
TCP as a real resolver would.
"""

from __future__ import annotations

import socketserver
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from tests.support.servers import free_port


def _txt_rdata(value: str) -> dns.rdtypes.ANY.TXT.TXT:
    # One TXT record of <=255-byte character-strings (RFC 1035 §3.3.14); a key record is longer.
    data = value.encode()
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeDns:
    def __init__(self, txt: Mapping[str, Sequence[str]] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.txt: dict[str, list[str]] = {}
        for name, values in (txt or {}).items():
            self.set_txt(name, values)
        self.queries: list[tuple[str, str, str]] = []  # (transport, TYPE, name)
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []

    @property
    def address(self) -> str:
        """The value for THREADLINE_DNS_SERVERS."""
        return f"{self.host}:{self.port}"

    def set_txt(self, name: str, values: Sequence[str]) -> None:
        self.txt[name.rstrip(".").lower()] = list(values)

    def answer(self, wire: bytes, *, transport: str) -> bytes | None:
        """The reply to one query's bytes (None for bytes that are no DNS query)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((transport, rtype, name))
            values = self.txt.get(name)
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            response.answer.append(
                dns.rrset.from_rdata_list(question.name, 60, [_txt_rdata(v) for v in values])
            )
        if transport == "tcp":
            return response.to_wire(max_size=65535)  # not the EDNS size make_response copied from the query
        limit = max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.TC
            return truncated.to_wire()

    def start(self) -> None:
        fake = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = fake.answer(data, transport="udp")
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                # RFC 1035 §4.2.2: each message is prefixed by its two-byte length.
                while (head := self._read(2)) is not None:
                    data = self._read(struct.unpack("!H", head)[0])
                    reply = None if data is None else fake.answer(data, transport="tcp")
                    if reply is None:
                        return
                    self.request.sendall(struct.pack("!H", len(reply)) + reply)

            def _read(self, n: int) -> bytes | None:
                buf = b""
                while len(buf) < n:
                    chunk = self.request.recv(n - len(buf))
                    if not chunk:
                        return None
                    buf += chunk
                return buf

        self._servers = [_UdpServer((self.host, self.port), Udp), _TcpServer((self.host, self.port), Tcp)]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


@contextmanager
def fake_dns(txt: Mapping[str, Sequence[str]] | None = None) -> Iterator[FakeDns]:
    server = FakeDns(txt)
    server.start()
    try:
        yield server
    finally:
        server.stop()
