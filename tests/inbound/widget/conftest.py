"""A Threadline with one widget-enabled inbox, its API on a TestClient, and a visitor helper."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from core.crypto import SecretBox
from core.db.session import system_scope
from core.runtime import Runtime
from core.settings import Settings
from core.tenancy.models import Inbox
from inbound.widget.api import mount
from inbound.widget.identity import set_identity_secret
from tests.conftest import make_tenant
from tests.support.servers import RedisForTests

HOST = "https://shop.example.com"
OWN = "http://127.0.0.1:8000"
ALLOWED = ["https://shop.example.com", "https://*.example.org"]


@pytest.fixture()
def settings(tmp_path: Path, redis_server: RedisForTests) -> Settings:
    return Settings(
        THREADLINE_DATA_DIR=tmp_path, THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=2,
        REDIS_URL=redis_server.url, THREADLINE_PUBLIC_URL=OWN, THREADLINE_SECRET_KEY="widget-test-secret-key",
        THREADLINE_UNDO_SECONDS=0,
    )


def enable_widget(runtime: Runtime, inbox_id: Any, *, identity_secret: str | None = None, **config: Any) -> None:
    """The inbox's widget settings; an identity secret is sealed as production stores it."""
    values = {"allowed_origins": ALLOWED, **config}
    with system_scope(runtime.factory) as session:
        session.execute(update(Inbox).where(Inbox.id == inbox_id).values(widget_config=values))
        if identity_secret is not None:
            set_identity_secret(session=session, inbox_id=inbox_id, secret=identity_secret,
                                box=SecretBox.from_settings(runtime.settings))


@dataclass
class Visitor:
    http: TestClient
    inbox_id: str
    origin: str = HOST
    token: str | None = None
    conversation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        h = {"Origin": self.origin}
        if self.token:
            h["X-Threadline-Visitor"] = self.token
        return h

    def start(self, **body: Any) -> Any:
        r = self.http.post("/widget/v1/conversations", json={"inbox_id": self.inbox_id, **body}, headers=self.headers())
        if r.status_code == 200:
            self.token, self.conversation_id = r.json()["token"], r.json()["conversation_id"]
        return r

    def send(self, text: str, client_id: str) -> Any:
        return self.http.post("/widget/v1/messages", json={"client_message_id": client_id, "text": text},
                              headers=self.headers())

    def history(self, after: int = 0) -> Any:
        return self.http.get(f"/widget/v1/messages?after={after}", headers=self.headers())


@dataclass
class WidgetWorld:
    runtime: Runtime
    http: TestClient
    inbox_id: str

    def visitor(self, **kw: Any) -> Visitor:
        return Visitor(self.http, self.inbox_id, **kw)


@pytest.fixture()
def widget(runtime: Runtime) -> Iterator[WidgetWorld]:
    _, inbox = make_tenant(runtime)
    enable_widget(runtime, inbox.id)
    with TestClient(widget_app(runtime)) as http:
        yield WidgetWorld(runtime, http, str(inbox.id))


def widget_app(runtime: Runtime) -> FastAPI:
    """Only what the widget mounts (the admin API's own routes are not under test here)."""
    app = FastAPI()
    app.state.runtime = runtime
    mount(app, runtime.settings)
    return app
