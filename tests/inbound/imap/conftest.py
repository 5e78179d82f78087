"""A real Dovecot per test session, a fresh mailbox user per test, IMAP accounts in Postgres."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from core.crypto import SecretBox
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.imap_models import ImapAccount, ImapAfterAction, ImapTls
from core.tenancy.models import Inbox, Tenant
from core.tickets.models import RawInbound
from inbound.imap.accounts import AccountSpec, upsert_account
from inbound.imap.service import PollerOptions, PollResult, load_account, poll_once
from inbound.imap.session import open_client
from tests.conftest import make_tenant
from tests.support.dovecot import DovecotServer, MailUser, dovecot_missing_reason


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    reason = dovecot_missing_reason()
    if reason:
        pytest.skip(reason)
    server = DovecotServer()
    yield server
    server.stop()


@pytest.fixture()
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A mailbox of its own for each test (UIDs and UIDVALIDITY start fresh)."""
    return dovecot.new_user()


@pytest.fixture()
def trust(dovecot: DovecotServer) -> ssl.SSLContext:
    """Trusts the test server's self-signed certificate (production uses the system store)."""
    return ssl.create_default_context(cafile=str(dovecot.cert_path))


def imap_as(server: DovecotServer, user: MailUser) -> IMAPClient:
    """"Another client" of the same mailbox: a person's mail program, or the test putting mail in."""
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    client.login(user.name, user.password)
    return client


def message(n: int, *, subject: str | None = None, body: str = "My backup fails every night.") -> bytes:
    return (
        f"From: Customer {n} <customer{n}@example.test>\r\n"
        f"To: support@acme.test\r\n"
        f"Subject: {subject or f'Help request {n}'}\r\n"
        f"Message-ID: <m{n}.{uuid.uuid4().hex}@example.test>\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def append(server: DovecotServer, user: MailUser, raws: list[bytes], *, folder: str = "INBOX",
           flags: tuple[bytes, ...] = ()) -> None:
    with imap_as(server, user) as client:
        for raw in raws:
            client.append(folder, raw, flags=flags)


def folder_flags(server: DovecotServer, user: MailUser, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
    with imap_as(server, user) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    tenant: Tenant
    inbox: Inbox


def make_account(
    rt: Runtime,
    server: DovecotServer,
    user: MailUser,
    *,
    after: ImapAfterAction = ImapAfterAction.FLAG,
    folder: str = "INBOX",
    move_to: str | None = None,
    tls: ImapTls = ImapTls.NONE,
    password: str | None = None,
    box: SecretBox | None = None,
) -> Account:
    tenant, inbox = make_tenant(rt)
    port = server.tls_port if tls is ImapTls.SSL else server.port
    spec = AccountSpec(host=server.host, port=port, tls=tls, username=user.name, folder=folder,
                       after_action=after, move_to=move_to)
    encrypted = (box or SecretBox.from_settings(rt.settings)).encrypt(password or user.password)
    with system_scope(rt.factory) as session:
        account, _ = upsert_account(session=session, inbox=inbox, spec=spec, password_encrypted=encrypted)
        return Account(account.id, tenant, inbox)


def poll(rt: Runtime, account: Account, options: PollerOptions | None = None) -> PollResult:
    """One poll cycle as the worker runs it: load (fresh checkpoint), connect, poll_once, log out."""
    options = options or PollerOptions()
    config = load_account(rt.factory, account_id=account.id, tenant_id=account.tenant.id,
                          box=SecretBox.from_settings(rt.settings))
    assert config is not None
    with open_client(config.endpoint, ssl_context=options.ssl_context, timeout=10) as client:
        return poll_once(client, config, stored=config.checkpoint, factory=rt.factory, options=options)


def raw_rows(rt: Runtime, account: Account) -> list[RawInbound]:
    with system_scope(rt.factory) as session:
        return list(session.execute(
            select(RawInbound).where(RawInbound.tenant_id == account.tenant.id).order_by(RawInbound.received_at)
        ).scalars())


def raw_count(rt: Runtime, account: Account) -> int:
    with system_scope(rt.factory) as session:
        return int(session.execute(
            select(func.count()).select_from(RawInbound).where(RawInbound.tenant_id == account.tenant.id)
        ).scalar_one())


def account_row(rt: Runtime, account: Account) -> ImapAccount:
    with system_scope(rt.factory) as session:
        return session.execute(select(ImapAccount).where(ImapAccount.id == account.id)).scalar_one()
