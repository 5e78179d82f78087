"""The Slack Web API client: base URL from settings (tests use a local fake), retries built in.

Which bot token: SLACK_BOT_TOKEN (one workspace, every tenant) when set, else the tenant's
workspace installed over OAuth (bots.slack.installations).
"""

from __future__ import annotations

import uuid

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlalchemy.orm import Session, sessionmaker

from bots.slack.installations import bot_for_tenant, oauth_configured
from core.errors import ConfigurationError
from core.settings import Settings


def _client(settings: Settings, token: str | None) -> WebClient:
    client = WebClient(token=token, base_url=settings.slack_api_url, timeout=15)
    # Slack answers 429 with Retry-After under load; connection resets happen. Retry both.
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=3))
    return client


def slack_client(settings: Settings, *, token: str | None = None) -> WebClient:
    token = token or (settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None)
    if not token:
        raise ConfigurationError("SLACK_BOT_TOKEN is not set")
    return _client(settings, token)


def api_client(settings: Settings) -> WebClient:
    """No token: for oauth.v2.access, and as Bolt's template for its per-request clients."""
    return _client(settings, None)


def client_for_tenant(settings: Settings, factory: sessionmaker[Session], tenant_id: uuid.UUID) -> WebClient:
    if settings.slack_bot_token is not None:
        return slack_client(settings)
    bot = bot_for_tenant(settings, factory, tenant_id=tenant_id)
    if bot is None:
        raise ConfigurationError("no Slack workspace is installed for this tenant")
    return _client(settings, bot.token)


def has_bot(settings: Settings, factory: sessionmaker[Session], tenant_id: uuid.UUID) -> bool:
    """Whether this tenant has a Slack bot at all (single workspace, or its own installation)."""
    if settings.slack_bot_token is not None:
        return True
    return oauth_configured(settings) and bot_for_tenant(settings, factory, tenant_id=tenant_id) is not None
