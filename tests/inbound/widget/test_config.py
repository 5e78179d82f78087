"""Allowed origins (exact or `*.suffix`, never a substring) and visitor tokens, as pure functions."""

from __future__ import annotations

import uuid

import pytest

from inbound.widget import tokens
from inbound.widget.config import WidgetConfig

CONFIG = WidgetConfig.from_json({"allowed_origins": ["https://shop.example", "https://*.example.com",
                                                     "http://localhost:3000"]})


@pytest.mark.parametrize("origin", [
    "https://shop.example", "https://www.example.com", "https://a.b.example.com", "http://localhost:3000",
    "https://WWW.Example.com", "https://shop.example:443",
])
def test_listed_origins_are_allowed(origin: str) -> None:
    assert CONFIG.allows(origin)


@pytest.mark.parametrize("origin", [
    "https://example.com.evil.net",  # Zammad's substring test lets this one through
    "https://evilexample.com", "https://example.com",  # the bare domain is not *.example.com (as in CSP)
    "http://www.example.com",  # scheme differs
    "https://shop.example:8443", "https://shop.example.evil", "https://xshop.example", "http://localhost:3001",
    "null", "", None, "https://shop.example/path", "javascript:alert(1)", "https://user@shop.example",
])
def test_other_origins_are_refused(origin: str | None) -> None:
    assert not CONFIG.allows(origin)


def test_frame_ancestors_lists_exactly_the_allowed_origins() -> None:
    assert CONFIG.frame_ancestors() == (
        "frame-ancestors https://shop.example https://*.example.com http://localhost:3000"
    )
    assert WidgetConfig.from_json({}).frame_ancestors() == "frame-ancestors 'none'"


def test_a_token_round_trips_and_a_changed_byte_or_expiry_is_refused() -> None:
    key, conv, inbox = b"k" * 32, uuid.uuid4(), uuid.uuid4()
    token = tokens.issue(key, conversation_id=conv, inbox_id=inbox, version=1, ttl=60, now=1000)
    assert tokens.verify(key, token, now=1000).conversation_id == conv
    with pytest.raises(tokens.TokenError):
        tokens.verify(key, token, now=1061)
    with pytest.raises(tokens.TokenError):
        tokens.verify(b"x" * 32, token, now=1000)
    forged = token.replace(f".{1060}.", ".99999999999.")
    with pytest.raises(tokens.TokenError):
        tokens.verify(key, forged, now=1000)
