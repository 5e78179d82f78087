"""The Slack Web API client: base URL from settings (tests use a local fake), retries built in."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from core.errors import ConfigurationError
from core.settings import Settings


def slack_client(settings: Settings, *, token: str | None = None) -> WebClient:
    token = token or (settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None)
    if not token:
        raise ConfigurationError("SLACK_BOT_TOKEN is not set")
    client = WebClient(token=token, base_url=settings.slack_api_url, timeout=15)
    # Slack answers 429 with Retry-After under load; connection resets happen. Retry both.
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=3))
    return client
