"""Database stopped during DATA: the client gets 451 (never 250), the retry is stored once."""

from __future__ import annotations

import smtplib
import tempfile
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.migrate import upgrade
from core.db.session import system_scope
from core.infra.embedded import EmbeddedPostgres
from core.infra.stack import _ensure_database
from core.registry import Registry, load_plugins
from core.runtime import Runtime, build_runtime
from core.settings import Settings
from core.tickets.models import Message
from tests.conftest import make_tenant
from tests.support.jobs import drain_jobs
from tests.support.threadline_smtp import running_smtp

pytestmark = pytest.mark.slow


@pytest.fixture()
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, Runtime]]:
    """A private Postgres this test may stop and start without disturbing the others."""
    base = Path(tempfile.mkdtemp(prefix="tlft", dir="/tmp"))
    pg = EmbeddedPostgres(base)
    url = _ensure_database(pg.start(), "faults")
    rt = build_runtime(Settings(THREADLINE_DATA_DIR=base), database_url=url, redis_url=None,
                       registry=load_plugins(Registry()))
    upgrade(rt.engine)
    yield pg, rt
    rt.close()
    pg.stop()


def test_database_down_during_data_gives_451_then_the_retry_is_stored_once(
    own_postgres: tuple[EmbeddedPostgres, Runtime],
) -> None:
    pg, rt = own_postgres
    make_tenant(rt, address="help@acme.test")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "bob@c.test", "help@acme.test", "db down", "<d1@c.test>"
    msg.set_content("please keep this mail")
    raw = msg.as_bytes(policy=policy.SMTP)
    with running_smtp(rt) as server:
        with smtplib.SMTP(server.host, server.port, timeout=20) as client:
            client.ehlo()
            client.mail("bob@c.test")
            assert client.rcpt("help@acme.test")[0] == 250
            pg.stop()  # the database goes away between RCPT and DATA
            code, text = client.data(raw)
        assert (code, text[:5]) == (451, b"4.3.0")
        pg.start()
        with smtplib.SMTP(server.host, server.port, timeout=20) as client:
            assert client.sendmail("bob@c.test", ["help@acme.test"], raw) == {}  # the MTA's retry
    drain_jobs(rt)
    with system_scope(rt.factory) as session:
        messages = session.execute(select(Message)).scalars().all()
    assert [m.email_message_id for m in messages] == ["d1@c.test"]
