"""`threadline widget set`: validated settings, a sealed identity secret, and the snippet to paste."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.cli.main import build_cli
from core.crypto import SecretBox
from core.db.session import system_scope
from core.errors import UserError
from core.registry import Registry, load_plugins
from core.runtime import Runtime
from core.tenancy.models import Inbox
from inbound.widget import cli
from inbound.widget.admin import WidgetChanges
from inbound.widget.config import IdentityMode, WidgetConfig
from inbound.widget.identity import check_identity
from tests.conftest import make_tenant

SECRET = "x" * 40


def _config(runtime: Runtime, address: str) -> dict[str, object]:
    with system_scope(runtime.factory) as session:
        return dict(session.execute(select(Inbox.widget_config).where(Inbox.address == address)).scalar_one())


def test_the_command_saves_every_setting_and_prints_the_snippet(runtime: Runtime,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _, inbox = make_tenant(runtime)

    @contextmanager
    def test_runtime(_: Registry, **__: object) -> Iterator[Runtime]:
        yield runtime

    monkeypatch.setattr(cli, "command_runtime", test_runtime)
    result = CliRunner().invoke(build_cli(load_plugins(Registry())), [
        "widget", "set", inbox.address, "--allowed-origin", "https://shop.example",
        "--allowed-origin", "https://*.example.com", "--identity-mode", "enforce", "--identity-secret-stdin",
        "--title", "Ask us", "--color", "#123456",
    ], input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    assert (f'<script async src="{runtime.settings.public_url}/widget/v1/loader.js" data-inbox="{inbox.id}"\n'
            '        data-label="Ask us" data-color="#123456"></script>') in result.output
    stored = _config(runtime, inbox.address)
    config = WidgetConfig.from_json(stored)
    assert (config.allows("https://a.example.com"), config.identity_mode, config.title) == (
        True, IdentityMode.ENFORCE, "Ask us")
    assert SECRET not in str(stored)  # sealed, never in plain text


def test_the_sealed_secret_verifies_what_the_site_signs(runtime: Runtime) -> None:
    import hashlib
    import hmac

    _, inbox = make_tenant(runtime)
    cli.set_widget(runtime, address=inbox.address, changes=WidgetChanges(
        allowed_origins=("https://shop.example",), identity_mode=IdentityMode.ENFORCE, identity_secret=SECRET))
    config = WidgetConfig.from_json(_config(runtime, inbox.address))
    good = hmac.new(SECRET.encode(), b"u-1", hashlib.sha256).hexdigest()
    identity = check_identity(config, SecretBox.from_settings(runtime.settings), user_id="u-1", user_hash=good)
    assert identity.verified


@pytest.mark.parametrize(("changes", "why"), [
    (WidgetChanges(allowed_origins=("shop.example",)), "not an origin"),
    (WidgetChanges(allowed_origins=("https://shop.example",), color="blue"), "not a colour"),
    (WidgetChanges(allowed_origins=("https://shop.example",), identity_mode=IdentityMode.ENFORCE),
     "needs an identity secret"),
    (WidgetChanges(allowed_origins=("https://shop.example",), identity_secret="short"), "at least 32"),
    (WidgetChanges(title="Hi"), "no allowed origin"),
])
def test_settings_the_widget_would_ignore_are_refused(runtime: Runtime, changes: WidgetChanges, why: str) -> None:
    _, inbox = make_tenant(runtime)
    with pytest.raises(UserError, match=why):
        cli.set_widget(runtime, address=inbox.address, changes=changes)


def test_an_unknown_inbox_is_an_error(runtime: Runtime) -> None:
    with pytest.raises(UserError, match="no inbox"):
        cli.set_widget(runtime, address="nobody@example.test", changes=WidgetChanges())
