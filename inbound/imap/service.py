"""`threadline imap`: one worker thread per enabled account, each IDLE-ing (or polling) its folder.

The order of one batch is the guarantee (architecture §5):
  1. FETCH BODY.PEEK[] (never sets \\Seen), 2. `accept_raw` commits bytes + key per mail,
  3. the after-action (flag/move/delete) on those mails only, 4. the checkpoint moves past them.
A crash anywhere before 4 leaves the checkpoint behind: the restart fetches the same mails again,
`accept_raw` reports them as duplicates (content key), and the after-action is done then.
"""

from __future__ import annotations

import logging
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.crypto import SecretBox
from core.db.session import system_scope, tenant_scope
from core.errors import ThreadlineError
from core.runtime import Runtime
from core.tenancy.imap_models import ImapAccount, ImapAfterAction
from inbound.imap import accounts
from inbound.imap.poller import (
    BATCH_BYTES,
    BATCH_SIZE,
    IDLE_MAX_SECONDS,
    SIZE_CHUNK,
    Checkpoint,
    backoff_delay,
    chunks,
    idempotency_key,
    nothing_new,
    plan_batches,
    reconcile,
    search_criteria,
    uids_after,
)
from inbound.imap.session import (
    Endpoint,
    FolderState,
    ImapError,
    apply_after_action,
    describe_error,
    fetch_headers,
    fetch_raw,
    fetch_sizes,
    open_client,
    search,
    select,
    wait_for_mail,
)
from inbound.ingest.accept import accept_raw

log = logging.getLogger(__name__)

SOURCE = "imap"


class CheckpointMovedError(ImapError):
    """Our checkpoint write lost a compare-and-set: the account was edited or another poller runs."""


@dataclass(frozen=True)
class PollerOptions:
    batch_size: int = BATCH_SIZE
    batch_bytes: int = BATCH_BYTES
    # Largest mail taken whole (THREADLINE_MAX_MESSAGE_BYTES, as SMTP's SIZE); larger ones are kept as
    # a header-only stub and left untouched in the mailbox.
    max_message_bytes: int = 25 * 1024 * 1024
    idle_seconds: float = IDLE_MAX_SECONDS
    poll_seconds: float = 60.0  # servers without IDLE
    use_idle: bool = True
    refresh_seconds: float = 30.0  # how soon accounts added or edited from the CLI are picked up
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    timeout: float = 30.0  # socket timeout for connect and each command
    ssl_context: ssl.SSLContext | None = None  # None: the system trust store (SSL_CERT_FILE honoured)
    # Called after each mail's commit, before its batch's after-action. For fault tests (a hook that
    # kills the process here proves the restart produces no duplicate) and for metrics.
    after_accept: Callable[[int], None] | None = None


@dataclass(frozen=True)
class AccountConfig:
    id: uuid.UUID
    tenant_id: uuid.UUID
    inbox_id: uuid.UUID
    endpoint: Endpoint
    folder: str
    after_action: ImapAfterAction
    move_to: str | None
    checkpoint: Checkpoint

    @classmethod
    def from_row(cls, row: ImapAccount, *, box: SecretBox) -> AccountConfig:
        endpoint = Endpoint(row.host, row.port, row.tls, row.username, box.decrypt(row.password_encrypted))
        return cls(
            id=row.id, tenant_id=row.tenant_id, inbox_id=row.inbox_id, endpoint=endpoint, folder=row.folder,
            after_action=row.after_action, move_to=row.move_to,
            checkpoint=Checkpoint(uidvalidity=row.uidvalidity, last_uid=row.last_uid),
        )

    def log_fields(self) -> dict[str, object]:
        return {"imap_account": str(self.id), "host": self.endpoint.host, "folder": self.folder}


@dataclass
class PollResult:
    checkpoint: Checkpoint
    accepted: int = 0
    duplicates: int = 0
    reset: bool = False
    batches: int = 0
    uids: list[int] = field(default_factory=list)
    too_large: list[int] = field(default_factory=list)  # kept as header stubs, left in the mailbox


def load_account(factory: sessionmaker[Session], *, account_id: uuid.UUID, tenant_id: uuid.UUID,
                 box: SecretBox) -> AccountConfig | None:
    """The account as stored now (fresh checkpoint), or None when it was disabled or removed."""
    with tenant_scope(factory, tenant_id) as session:
        row = session.get(ImapAccount, account_id)
        if row is None or not row.enabled:
            return None
        return AccountConfig.from_row(row, box=box)


def _save(factory: sessionmaker[Session], account: AccountConfig, *, expected: Checkpoint, new: Checkpoint) -> None:
    with tenant_scope(factory, account.tenant_id) as session:
        if not accounts.save_checkpoint(session=session, account_id=account.id, expected=expected, new=new):
            raise CheckpointMovedError(
                "the checkpoint changed under this poller (the account was edited, or a second "
                "`threadline imap` polls it); reloading"
            )


def _record(factory: sessionmaker[Session], *, tenant_id: uuid.UUID, account_id: uuid.UUID, error: str | None) -> None:
    with tenant_scope(factory, tenant_id) as session:
        accounts.record_poll(session=session, account_id=account_id, error=error)


def poll_once(
    client: IMAPClient,
    account: AccountConfig,
    *,
    stored: Checkpoint,
    factory: sessionmaker[Session],
    options: PollerOptions,
    stop: threading.Event | None = None,
) -> PollResult:
    """Take every mail above the checkpoint, batch by batch; returns the checkpoint now stored."""
    folder = select(client, account.folder)
    checkpoint, reset = reconcile(stored, server_uidvalidity=folder.uidvalidity)
    if checkpoint != stored:
        if reset:
            log.warning(
                "UIDVALIDITY changed: the folder is read again from the start (already taken mail is "
                "recognised by its key)",
                extra={**account.log_fields(), "old": stored.uidvalidity, "new": folder.uidvalidity},
            )
        _save(factory, account, expected=stored, new=checkpoint)
    result = PollResult(checkpoint=checkpoint, reset=reset)
    if not nothing_new(uidnext=folder.uidnext, last_uid=checkpoint.last_uid):
        uids = uids_after(search(client, search_criteria(checkpoint.last_uid)), checkpoint.last_uid)
        for chunk in chunks(uids, SIZE_CHUNK):
            sizes = fetch_sizes(client, chunk)
            for batch in plan_batches(chunk, sizes=sizes, max_count=options.batch_size, max_bytes=options.batch_bytes):
                if stop is not None and stop.is_set():
                    return result
                _take_batch(client, account, batch, folder=folder, result=result, factory=factory, options=options,
                            sizes=sizes)
    _record(factory, tenant_id=account.tenant_id, account_id=account.id, error=None)
    return result


def _take_batch(
    client: IMAPClient,
    account: AccountConfig,
    batch: list[int],
    *,
    folder: FolderState,
    result: PollResult,
    factory: sessionmaker[Session],
    options: PollerOptions,
    sizes: dict[int, int] | None = None,
) -> None:
    sizes = sizes or {}
    too_large = [uid for uid in batch if sizes.get(uid, 0) > options.max_message_bytes]
    raws = fetch_raw(client, [uid for uid in batch if uid not in too_large])
    stubs = fetch_headers(client, too_large)
    taken: list[int] = []
    for uid in batch:
        envelope: dict[str, object] = {"imap_account": str(account.id), "uid": uid, "uidvalidity": folder.uidvalidity,
                                       "folder": account.folder}
        raw = raws.get(uid)
        if uid in stubs:
            # Over the size limit: keep the headers so agents see who wrote and why it is missing; the
            # mailbox copy is not flagged, moved or deleted (an operator can fetch it by hand).
            raw = stubs[uid]
            envelope |= {"too_large": True, "size": sizes.get(uid, 0), "limit": options.max_message_bytes}
            log.warning("IMAP mail over the size limit: kept its headers only",
                        extra={**account.log_fields(), "uid": uid, "size": sizes.get(uid, 0)})
        if raw is None:  # expunged by someone else since the search: nothing to take
            continue
        accepted = accept_raw(
            factory,
            tenant_id=account.tenant_id,
            inbox_id=account.inbox_id,
            source=SOURCE,
            payload=raw,
            idempotency_key=idempotency_key(account_id=account.id, raw=raw),
            envelope=envelope,
        )
        if uid not in stubs:
            taken.append(uid)
        if accepted.duplicate:
            result.duplicates += 1
        else:
            result.accepted += 1
        if options.after_accept is not None:
            options.after_accept(uid)
    # Only committed mail gets the after-action; only after it does the checkpoint move (module doc).
    apply_after_action(client, taken, action=account.after_action, move_to=account.move_to, folder=folder)
    new = Checkpoint(uidvalidity=result.checkpoint.uidvalidity, last_uid=max(batch))
    _save(factory, account, expected=result.checkpoint, new=new)
    result.checkpoint = new
    result.batches += 1
    result.uids.extend(taken)
    result.too_large.extend(stubs)
    log.info(
        "took mail from IMAP",
        extra={**account.log_fields(), "mails": len(taken), "last_uid": new.last_uid, "after": account.after_action},
    )


def run_account(
    factory: sessionmaker[Session],
    *,
    account_id: uuid.UUID,
    tenant_id: uuid.UUID,
    box: SecretBox,
    stop: threading.Event,
    options: PollerOptions,
) -> None:
    """Connect, poll, wait (IDLE or sleep), repeat; reconnect with backoff, recording the error."""
    attempt = 0
    while not stop.is_set():
        account: AccountConfig | None = None
        try:
            account = load_account(factory, account_id=account_id, tenant_id=tenant_id, box=box)
            if account is None:
                log.info("IMAP account disabled or removed; its poller stops", extra={"imap_account": str(account_id)})
                return
            with open_client(account.endpoint, ssl_context=options.ssl_context, timeout=options.timeout) as client:
                log.info("connected to IMAP", extra=account.log_fields())
                stored = account.checkpoint
                while not stop.is_set():
                    result = poll_once(client, account, stored=stored, factory=factory, options=options, stop=stop)
                    stored = result.checkpoint
                    attempt = 0
                    wait_for_mail(client, stop=stop, idle_seconds=options.idle_seconds,
                                  poll_seconds=options.poll_seconds, use_idle=options.use_idle)
        except (ThreadlineError, IMAPClientError, OSError, SQLAlchemyError) as exc:
            _after_failure(factory, exc, endpoint=account.endpoint if account else None, account_id=account_id,
                           tenant_id=tenant_id)
        except Exception as exc:  # unknown: keep serving the other accounts, log with a reference
            ref = uuid.uuid4().hex[:8]
            log.exception("IMAP poller failed unexpectedly", extra={"imap_account": str(account_id), "ref": ref})
            _after_failure(factory, exc, endpoint=account.endpoint if account else None, account_id=account_id,
                           tenant_id=tenant_id, ref=ref)
        delay = backoff_delay(attempt, base=options.backoff_base, cap=options.backoff_max)
        attempt += 1
        stop.wait(delay)


def _after_failure(factory: sessionmaker[Session], exc: BaseException, *, endpoint: Endpoint | None,
                   account_id: uuid.UUID, tenant_id: uuid.UUID, ref: str | None = None) -> None:
    message = _db_error_words(exc) if isinstance(exc, SQLAlchemyError) else describe_error(exc, endpoint=endpoint)
    if ref:
        message = f"{message} (see the logs, ref {ref})"
    log.warning("IMAP account failed; retrying with backoff", extra={"imap_account": str(account_id), "error": message})
    try:
        _record(factory, tenant_id=tenant_id, account_id=account_id, error=message)
    except SQLAlchemyError as db_exc:  # the database itself is down: the log line above is all we can do
        log.warning("could not record the IMAP error", extra={"imap_account": str(account_id), "error": str(db_exc)})


def _db_error_words(exc: SQLAlchemyError) -> str:
    # Not str(exc): SQLAlchemy appends the statement's parameters, here the customer's mail bytes.
    cause = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()
    return f"database error: {cause[0] if cause else type(exc).__name__}"


@dataclass
class _Worker:
    fingerprint: str
    stop: threading.Event
    thread: threading.Thread


def serve_imap(runtime: Runtime, *, stop: threading.Event, options: PollerOptions | None = None) -> None:
    """Run until `stop`: start a worker per enabled account, restart it when the account changes."""
    options = replace(options or PollerOptions(), max_message_bytes=runtime.settings.max_message_bytes)
    box = SecretBox.from_settings(runtime.settings)
    workers: dict[uuid.UUID, _Worker] = {}
    told_empty = False
    try:
        while not stop.is_set():
            try:
                with system_scope(runtime.factory) as session:
                    rows = accounts.enabled_accounts(session=session)
                    wanted = {a.id: (a.tenant_id, accounts.fingerprint(a)) for a in rows}
            except SQLAlchemyError as exc:
                log.warning("cannot list IMAP accounts; retrying", extra={"error": _db_error_words(exc)})
                stop.wait(min(options.refresh_seconds, 5.0))
                continue
            if not wanted and not told_empty:
                log.info("no IMAP account enabled; add one with `threadline inbox imap ADDRESS ...`")
            told_empty = not wanted
            for account_id, worker in list(workers.items()):
                current = wanted.get(account_id)
                if current is None or current[1] != worker.fingerprint or not worker.thread.is_alive():
                    worker.stop.set()
                    if current is None or current[1] != worker.fingerprint:
                        worker.thread.join(timeout=5)
                    del workers[account_id]
            for account_id, (tenant_id, fp) in wanted.items():
                if account_id not in workers:
                    workers[account_id] = _start_worker(runtime, account_id, tenant_id, fp, box, options)
            stop.wait(options.refresh_seconds)
    finally:
        for worker in workers.values():
            worker.stop.set()
        for worker in workers.values():
            worker.thread.join(timeout=5)


def _start_worker(runtime: Runtime, account_id: uuid.UUID, tenant_id: uuid.UUID, fp: str, box: SecretBox,
                  options: PollerOptions) -> _Worker:
    worker_stop = threading.Event()
    thread = threading.Thread(
        target=run_account,
        kwargs={"account_id": account_id, "tenant_id": tenant_id, "box": box, "stop": worker_stop, "options": options},
        args=(runtime.factory,),
        name=f"imap-{str(account_id)[:8]}",
        daemon=True,
    )
    thread.start()
    return _Worker(fp, worker_stop, thread)
