"""IMAP accounts polled into an inbox, with the checkpoint that says what we already took."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantOwned, new_id, str_enum, utcnow_column


class ImapTls(StrEnum):
    SSL = "ssl"  # implicit TLS from the first byte (port 993, RFC 8314)
    STARTTLS = "starttls"  # plain connect, then STARTTLS before LOGIN (port 143, RFC 3501 §6.2.1)
    NONE = "none"  # no encryption: loopback and tests only


class ImapAfterAction(StrEnum):
    FLAG = "flag"  # keep the mail, mark it with a keyword (or \Flagged) so people see we took it
    MOVE = "move"  # move it to `move_to`
    DELETE = "delete"  # \Deleted + expunge


class ImapAccount(TenantOwned, Base):
    """One mailbox folder polled into one inbox. The password is stored encrypted (core.crypto).

    The checkpoint is (uidvalidity, last_uid), never the \\Seen flag: other people and clients read
    the same mailbox, and a message they opened must still reach us (RFC 3501 §2.3.1.1, §2.3.2).
    """

    __tablename__ = "imap_accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    inbox_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("inboxes.id", ondelete="CASCADE"), unique=True
    )
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    tls: Mapped[ImapTls] = mapped_column(str_enum(ImapTls, "imap_tls"), default=ImapTls.SSL)
    username: Mapped[str] = mapped_column(String(320))
    password_encrypted: Mapped[str] = mapped_column(Text)
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    after_action: Mapped[ImapAfterAction] = mapped_column(
        str_enum(ImapAfterAction, "imap_after_action"), default=ImapAfterAction.FLAG
    )
    move_to: Mapped[str | None] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utcnow_column()
