"""IMAP account rows: upsert from the CLI, checkpoint and status from the poller. Never commits."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.tenancy.imap_models import ImapAccount, ImapAfterAction, ImapTls
from core.tenancy.models import Inbox
from inbound.imap.poller import Checkpoint

DEFAULT_PORTS = {ImapTls.SSL: 993, ImapTls.STARTTLS: 143, ImapTls.NONE: 143}
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class AccountSpec:
    """Everything an operator sets for an account except the password."""

    host: str
    port: int
    tls: ImapTls
    username: str
    folder: str = "INBOX"
    after_action: ImapAfterAction = ImapAfterAction.FLAG
    move_to: str | None = None

    def validate(self) -> None:
        if not self.host.strip() or any(c.isspace() for c in self.host.strip()):
            raise InvalidInput(f"{self.host!r} is not a host name")
        if not 0 < self.port < 65536:
            raise InvalidInput(f"port {self.port} is out of range")
        if not self.username.strip():
            raise InvalidInput("the user name is empty")
        if not self.folder.strip():
            raise InvalidInput("the folder is empty")
        if self.after_action is ImapAfterAction.MOVE:
            if not self.move_to:
                raise InvalidInput("--after move needs --move-to FOLDER")
            if self.move_to == self.folder:
                raise InvalidInput("--move-to must differ from the polled folder")


def fingerprint(account: ImapAccount) -> str:
    """Changes when anything the poller connects with changes (the worker then restarts)."""
    parts = (
        account.host, str(account.port), account.tls, account.username, account.password_encrypted,
        account.folder, account.after_action, account.move_to or "",
    )
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def account_for_inbox(*, session: Session, inbox_id: uuid.UUID) -> ImapAccount | None:
    return session.execute(select(ImapAccount).where(ImapAccount.inbox_id == inbox_id)).scalar_one_or_none()


def upsert_account(
    *, session: Session, inbox: Inbox, spec: AccountSpec, password_encrypted: str | None
) -> tuple[ImapAccount, bool]:
    """Create or update the inbox's account; re-enables it. Returns (account, created)."""
    spec.validate()
    account = account_for_inbox(session=session, inbox_id=inbox.id)
    if account is None:
        if password_encrypted is None:
            raise InvalidInput("a new IMAP account needs a password (--password-stdin or --password-env)")
        account = ImapAccount(
            id=uuid.uuid4(), tenant_id=inbox.tenant_id, inbox_id=inbox.id, password_encrypted=password_encrypted,
            last_uid=0,
        )
        session.add(account)
        created = True
    else:
        created = False
        if (account.host, account.username, account.folder) != (spec.host, spec.username, spec.folder):
            # Another mailbox: its UIDs mean nothing against our checkpoint (RFC 3501 §2.3.1.1).
            account.uidvalidity, account.last_uid = None, 0
        if password_encrypted is not None:
            account.password_encrypted = password_encrypted
    account.host, account.port, account.tls = spec.host, spec.port, spec.tls
    account.username, account.folder = spec.username, spec.folder
    account.after_action, account.move_to = spec.after_action, spec.move_to
    account.enabled, account.last_error = True, None
    session.flush()
    return account, created


def disable_account(*, session: Session, inbox_id: uuid.UUID) -> ImapAccount:
    account = account_for_inbox(session=session, inbox_id=inbox_id)
    if account is None:
        raise NotFound("this inbox has no IMAP account")
    account.enabled = False
    return account


def enabled_accounts(*, session: Session) -> list[ImapAccount]:
    """System scope: every tenant's enabled accounts (the poller serves them all)."""
    return list(session.execute(select(ImapAccount).where(ImapAccount.enabled.is_(True))).scalars())


def save_checkpoint(
    *, session: Session, account_id: uuid.UUID, expected: Checkpoint, new: Checkpoint
) -> bool:
    """Compare-and-set: False when the row moved under us (account edited, or a second poller)."""
    result = session.execute(
        update(ImapAccount)
        .where(
            ImapAccount.id == account_id,
            ImapAccount.uidvalidity.is_not_distinct_from(expected.uidvalidity),
            ImapAccount.last_uid == expected.last_uid,
        )
        .values(uidvalidity=new.uidvalidity, last_uid=new.last_uid)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_poll(*, session: Session, account_id: uuid.UUID, error: str | None) -> None:
    """Status for `inbox list`: when we last polled, and the last error in plain words (None = fine)."""
    values: dict[str, object] = {"last_error": error[:MAX_ERROR_CHARS] if error else None}
    if error is None:
        values["last_polled_at"] = datetime.now(UTC)
    session.execute(update(ImapAccount).where(ImapAccount.id == account_id).values(**values))
