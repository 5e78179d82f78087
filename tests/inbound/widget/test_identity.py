"""JWT identities (HS256, exp required, bounded skew and lifetime) and the sealed identity secret."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from core.crypto import SecretBox
from core.db.session import system_scope
from core.errors import UserError
from core.tenancy.models import Inbox
from inbound.widget.config import IdentityMode, WidgetConfig
from inbound.widget.identity import JWT_LEEWAY, JWT_MAX_LIFETIME, IdentityRefusedError, check_identity
from tests.inbound.widget.conftest import WidgetWorld, enable_widget

SECRET = "site-identity-secret-of-32-characters-or-more"
BOX = SecretBox.from_material("identity-test-key")
NOW = 1_800_000_000
CONFIG = WidgetConfig.from_json({"allowed_origins": ["https://shop.example"], "identity_mode": "enforce",
                                 "identity_secret_sealed": BOX.encrypt(SECRET)})


def _jwt(claims: dict[str, Any], *, secret: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode({"sub": "u-1", "iat": NOW, "exp": NOW + 300, **claims}, secret, algorithm=alg)


def test_a_fresh_jwt_identifies_its_user_with_its_email() -> None:
    got = check_identity(CONFIG, BOX, user_id=None, user_hash=None, now=NOW,
                         user_jwt=_jwt({"email": "U1@Site.test", "name": "Una"}))
    assert (got.external_id, got.verified, got.email, got.name) == ("u-1", True, "u1@site.test", "Una")


@pytest.mark.parametrize(("why", "token"), [
    ("expired beyond the skew", _jwt({"iat": NOW - 400, "exp": NOW - JWT_LEEWAY - 1})),
    ("no exp", jwt.encode({"sub": "u-1"}, SECRET, algorithm="HS256")),
    ("no sub", jwt.encode({"exp": NOW + 60}, SECRET, algorithm="HS256")),
    ("lives too long", _jwt({"exp": NOW + JWT_MAX_LIFETIME + JWT_LEEWAY + 1, "iat": None})),
    ("iat to exp too long", _jwt({"iat": NOW - 3600, "exp": NOW + 60})),
    ("issued in the future", _jwt({"iat": NOW + JWT_LEEWAY + 5, "exp": NOW + 600})),
    ("another secret", _jwt({}, secret="another-secret-of-32-characters-at-least")),
    ("HS512 is not HS256", _jwt({}, alg="HS512")),
    ("alg none", jwt.encode({"sub": "u-1", "exp": NOW + 60}, None, algorithm="none")),
    ("garbage", "not.a.jwt"),
])
def test_a_bad_jwt_is_refused_in_enforce_mode(why: str, token: str) -> None:
    with pytest.raises(IdentityRefusedError):
        check_identity(CONFIG, BOX, user_id=None, user_hash=None, user_jwt=token, now=NOW)


def test_a_jwt_just_expired_within_the_skew_is_still_accepted() -> None:
    token = _jwt({"iat": NOW - 300, "exp": NOW - JWT_LEEWAY + 5})
    assert check_identity(CONFIG, BOX, user_id=None, user_hash=None, user_jwt=token, now=NOW).verified


def test_optional_mode_keeps_a_bad_jwt_as_nobody() -> None:
    optional = WidgetConfig.from_json({"allowed_origins": ["https://shop.example"],
                                       "identity_mode": IdentityMode.OPTIONAL.value,
                                       "identity_secret_sealed": BOX.encrypt(SECRET)})
    got = check_identity(optional, BOX, user_id=None, user_hash=None, user_jwt=_jwt({}, secret="x" * 40), now=NOW)
    assert (got.external_id, got.verified) == (None, False)


def test_a_plain_text_secret_in_the_config_verifies_nothing() -> None:
    plain = WidgetConfig.from_json({"allowed_origins": ["https://shop.example"], "identity_mode": "enforce",
                                    "identity_secret": SECRET})
    with pytest.raises(IdentityRefusedError):
        check_identity(plain, BOX, user_id=None, user_hash=None, user_jwt=_jwt({}), now=NOW)


def test_the_identity_secret_is_stored_sealed_and_never_in_plain_text(widget: WidgetWorld) -> None:
    enable_widget(widget.runtime, uuid.UUID(widget.inbox_id), identity_mode="enforce", identity_secret=SECRET)
    with system_scope(widget.runtime.factory) as session:
        stored = session.execute(select(Inbox.widget_config).where(Inbox.id == uuid.UUID(widget.inbox_id))).scalar_one()
    assert SECRET not in repr(stored) and "identity_secret" not in stored
    assert SecretBox.from_settings(widget.runtime.settings).decrypt(stored["identity_secret_sealed"]) == SECRET


def test_a_short_identity_secret_is_refused(widget: WidgetWorld) -> None:
    with pytest.raises(UserError):
        enable_widget(widget.runtime, uuid.UUID(widget.inbox_id), identity_secret="short")


def test_a_jwt_visitor_resumes_on_another_device_and_a_spoofed_one_gets_nothing(widget: WidgetWorld) -> None:
    enable_widget(widget.runtime, uuid.UUID(widget.inbox_id), identity_mode="optional", identity_secret=SECRET)
    now = int(time.time())
    token = jwt.encode({"sub": "u-7", "exp": now + 120, "email": "u7@site.test"}, SECRET, algorithm="HS256")
    laptop = widget.visitor()
    assert laptop.start(user_jwt=token).json()["identified"] is True
    laptop.send("my order", "client-0001")
    phone = widget.visitor()
    phone.start(user_jwt=token)
    assert [m["body_text"] for m in phone.history().json()["messages"]] == ["my order"]
    forged = jwt.encode({"sub": "u-7", "exp": now + 120}, "guessed-secret-guessed-secret-guessed", algorithm="HS256")
    spoof = widget.visitor()
    assert spoof.start(user_jwt=forged).json()["identified"] is False
    assert spoof.history().json()["messages"] == []
