"""IMAP I/O with imapclient: connect per TLS mode, select, search, fetch, after-actions, IDLE.

Thin wrappers that return plain values; the order of operations and its guarantees live in
`service.py`, the decisions in `poller.py`.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientAbortError, IMAPClientError, LoginError

from core.errors import OperatorError, ThreadlineError
from core.tenancy.imap_models import ImapAfterAction, ImapTls

log = logging.getLogger(__name__)

# Our keyword for "taken into Threadline" (RFC 3501 §2.3.2 keywords); \Flagged when the folder
# does not accept new keywords (no \* in PERMANENTFLAGS).
FLAG_KEYWORD = b"$Threadline"
FALLBACK_FLAG = b"\\Flagged"
STOP_CHECK_SECONDS = 1.0  # how often a waiting poller looks at its stop event


class ImapError(OperatorError):
    """The mailbox is not usable as configured (missing folder, no STARTTLS, ...); plain words."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: ImapTls
    username: str
    password: str = field(repr=False)

    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FolderState:
    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    keywords_allowed: bool


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def connect(endpoint: Endpoint, *, ssl_context: ssl.SSLContext | None, timeout: float) -> IMAPClient:
    """A logged-in client. TLS per RFC 8314 (implicit) or RFC 3501 §6.2.1 (STARTTLS before LOGIN)."""
    context = ssl_context or ssl.create_default_context()
    if endpoint.tls is ImapTls.SSL:
        client = IMAPClient(endpoint.host, port=endpoint.port, ssl=True, ssl_context=context, timeout=timeout)
    else:
        client = IMAPClient(endpoint.host, port=endpoint.port, ssl=False, timeout=timeout)
    try:
        if endpoint.tls is ImapTls.STARTTLS:
            if not client.has_capability("STARTTLS"):
                raise ImapError(f"{endpoint.where()} does not offer STARTTLS: use --tls ssl (port 993) instead")
            client.starttls(context)
        elif endpoint.tls is ImapTls.NONE and not _is_loopback(endpoint.host):
            log.warning("IMAP password sent without TLS", extra={"host": endpoint.host, "port": endpoint.port})
        if endpoint.tls is ImapTls.NONE and client.has_capability("LOGINDISABLED"):
            # RFC 3501 §6.2.3: the server refuses LOGIN on an unencrypted connection.
            raise ImapError(f"{endpoint.where()} refuses passwords without encryption: use --tls starttls or ssl")
        client.login(endpoint.username, endpoint.password)
    except BaseException:
        _close_quietly(client)
        raise
    return client


def _close_quietly(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except OSError:
        pass


@contextmanager
def open_client(endpoint: Endpoint, *, ssl_context: ssl.SSLContext | None, timeout: float) -> Iterator[IMAPClient]:
    client = connect(endpoint, ssl_context=ssl_context, timeout=timeout)
    try:
        yield client
    finally:
        try:
            client.logout()
        except (IMAPClientError, OSError):
            _close_quietly(client)


def select(client: IMAPClient, folder: str) -> FolderState:
    """SELECT (read-write: the after-actions change flags). Read-write SELECT does not set \\Seen."""
    try:
        info = client.select_folder(folder)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        raise ImapError(f"cannot open folder {folder!r}: {_server_text(exc)}") from None
    uidnext = info.get(b"UIDNEXT")
    return FolderState(
        name=folder,
        uidvalidity=int(info[b"UIDVALIDITY"]),
        uidnext=int(uidnext) if uidnext is not None else None,
        exists=int(info.get(b"EXISTS", 0)),
        keywords_allowed=b"\\*" in info.get(b"PERMANENTFLAGS", ()),
    )


def search(client: IMAPClient, criteria: list[str]) -> list[int]:
    return [int(uid) for uid in client.search(criteria)]


def fetch_sizes(client: IMAPClient, uids: list[int]) -> dict[int, int]:
    if not uids:
        return {}
    return {int(uid): int(data.get(b"RFC822.SIZE", 0)) for uid, data in client.fetch(uids, [b"RFC822.SIZE"]).items()}


def fetch_raw(client: IMAPClient, uids: list[int]) -> dict[int, bytes]:
    """Exact bytes by UID. BODY.PEEK[] (RFC 3501 §6.4.5) does not set \\Seen: reading is not taking.

    A UID missing from the answer was expunged by another client since the search.
    """
    if not uids:
        return {}
    out: dict[int, bytes] = {}
    for uid, data in client.fetch(uids, [b"BODY.PEEK[]"]).items():
        body = data.get(b"BODY[]")
        if body is not None:
            out[int(uid)] = bytes(body)
    return out


def fetch_headers(client: IMAPClient, uids: list[int]) -> dict[int, bytes]:
    """The header block only (BODY.PEEK[HEADER], no \\Seen): what we keep of a mail too large to take."""
    if not uids:
        return {}
    out: dict[int, bytes] = {}
    for uid, data in client.fetch(uids, [b"BODY.PEEK[HEADER]"]).items():
        header = data.get(b"BODY[HEADER]")
        if header is not None:
            out[int(uid)] = bytes(header)
    return out


def apply_after_action(
    client: IMAPClient, uids: list[int], *, action: ImapAfterAction, move_to: str | None, folder: FolderState
) -> None:
    """Flag, move or delete mails we have committed (and only those)."""
    if not uids:
        return
    if action is ImapAfterAction.FLAG:
        client.add_flags(uids, [FLAG_KEYWORD if folder.keywords_allowed else FALLBACK_FLAG], silent=True)
    elif action is ImapAfterAction.MOVE:
        if not move_to:
            raise ImapError("after-action is move but no --move-to folder is set")
        try:
            if client.has_capability("MOVE"):
                client.move(uids, move_to)  # RFC 6851: atomic
                return
            client.copy(uids, move_to)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            raise ImapError(f"cannot move mail to folder {move_to!r}: {_server_text(exc)}") from None
        _delete(client, uids)
    else:
        _delete(client, uids)


def _delete(client: IMAPClient, uids: list[int]) -> None:
    client.delete_messages(uids, silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)  # RFC 4315: expunge only these UIDs
    else:
        # Without UIDPLUS, EXPUNGE also removes mails another client marked \Deleted; that is
        # what any client of this folder would do on close, so it takes nothing that was staying.
        client.expunge()


def _has_exists(responses: list[tuple[object, ...]]) -> bool:
    return any(isinstance(r, tuple) and len(r) >= 2 and r[1] == b"EXISTS" for r in responses)


def wait_for_mail(
    client: IMAPClient, *, stop: threading.Event, idle_seconds: float, poll_seconds: float, use_idle: bool
) -> str:
    """Block until new mail may be there; returns how we woke ("exists", "timeout", "poll", "stop").

    IDLE (RFC 2177) when offered, checked every STOP_CHECK_SECONDS so a stop is prompt, and ended
    after `idle_seconds` (at most 29 minutes per RFC 2177 §3); otherwise sleep `poll_seconds`.
    """
    if not (use_idle and client.has_capability("IDLE")):
        return "stop" if stop.wait(poll_seconds) else "poll"
    client.idle()
    deadline = time.monotonic() + idle_seconds
    try:
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            slot = min(STOP_CHECK_SECONDS, remaining)
            started = time.monotonic()
            responses = client.idle_check(timeout=slot)
            if _has_exists(responses):
                return "exists"
            if not responses and time.monotonic() - started < slot / 2:
                # idle_check returns early and empty on EOF: let the next poll find the broken link.
                return "poll"
        return "stop"
    finally:
        client.idle_done()


def _server_text(exc: BaseException) -> str:
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text.strip() or type(exc).__name__


def describe_error(exc: BaseException, *, endpoint: Endpoint | None = None) -> str:
    """What went wrong, in words an operator can act on. Never contains the password."""
    where = endpoint.where() if endpoint else "the IMAP server"
    user = endpoint.username if endpoint else "the user"
    if isinstance(exc, ThreadlineError):
        return str(exc)
    if isinstance(exc, LoginError):
        return f"login failed: {where} refused the user name or password for {user} ({_server_text(exc)})"
    if isinstance(exc, socket.gaierror):
        return f"cannot find host {endpoint.host if endpoint else ''}: check the host name ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where} refused the connection: is the port right and the server running?"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the TLS certificate of {where} is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS with {where} failed ({exc.reason or exc}): --tls ssl needs the implicit-TLS port "
            "(usually 993), --tls starttls the plain one (usually 143)"
        )
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer in time"
    if isinstance(exc, IMAPClientAbortError):
        return f"{where} closed the connection ({_server_text(exc)})"
    if isinstance(exc, CapabilityError):
        return f"{where} lacks a needed IMAP feature ({_server_text(exc)})"
    if isinstance(exc, IMAPClientError):
        return f"{where} answered with an error: {_server_text(exc)}"
    if isinstance(exc, OSError):
        return f"network error with {where}: {exc.strerror or exc}"
    return f"unexpected {type(exc).__name__}: {exc}"
