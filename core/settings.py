"""All settings in one pydantic-settings class (architecture §3). Read only in entry points."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigurationError
from core.nameservers import parse_nameservers

_PLACEHOLDERS = {"changeme", "change-me", "xxx", "todo", "secret", "password"}


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_bytes: int = 25 * 1024 * 1024


class SlackSettings(BaseModel):
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_url: str = "https://slack.com/api/"


class TeamsSettings(BaseModel):
    app_id: str | None = None
    app_password: SecretStr | None = None


class Settings(BaseSettings):
    """Threadline's settings. Environment names are the contract; see README 'Settings'."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: SecretStr | None = Field(default=None, validation_alias=_alias("DATABASE_URL"))
    database_migration_url: SecretStr | None = Field(
        default=None, validation_alias=_alias("DATABASE_MIGRATION_URL")
    )
    allow_owner_login: bool = Field(default=False, validation_alias=_alias("THREADLINE_ALLOW_OWNER_LOGIN"))
    redis_url: SecretStr | None = Field(default=None, validation_alias=_alias("REDIS_URL"))
    data_dir: Path = Field(default=Path(".threadline"), validation_alias=_alias("THREADLINE_DATA_DIR"))
    api_host: str = Field(default="127.0.0.1", validation_alias=_alias("THREADLINE_API_HOST"))
    api_port: int = Field(default=8000, validation_alias=_alias("THREADLINE_API_PORT"))
    smtp_host: str = Field(default="127.0.0.1", validation_alias=_alias("THREADLINE_SMTP_HOST"))
    smtp_port: int = Field(default=2525, validation_alias=_alias("THREADLINE_SMTP_PORT"))
    public_url: str = Field(default="http://127.0.0.1:8000", validation_alias=_alias("THREADLINE_PUBLIC_URL"))
    outbound_smtp_url: SecretStr | None = Field(
        default=None, validation_alias=_alias("THREADLINE_OUTBOUND_SMTP_URL")
    )
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=_alias("SLACK_SIGNING_SECRET")
    )
    slack_client_id: str | None = Field(default=None, validation_alias=_alias("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_CLIENT_SECRET"))
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias=_alias("SLACK_API_URL"))
    teams_app_id: str | None = Field(default=None, validation_alias=_alias("TEAMS_APP_ID"))
    teams_app_password: SecretStr | None = Field(default=None, validation_alias=_alias("TEAMS_APP_PASSWORD"))
    teams_tenant_id: str | None = Field(default=None, validation_alias=_alias("TEAMS_TENANT_ID"))
    teams_api_url: str = Field(
        default="https://smba.trafficmanager.net/teams/", validation_alias=_alias("TEAMS_API_URL")
    )
    teams_openid_url: str = Field(
        default="https://login.botframework.com/v1/.well-known/openidconfiguration",
        validation_alias=_alias("TEAMS_OPENID_URL"),
    )
    teams_token_url: str | None = Field(default=None, validation_alias=_alias("TEAMS_TOKEN_URL"))
    undo_seconds: float = Field(default=10, ge=0, validation_alias=_alias("THREADLINE_UNDO_SECONDS"))
    # Retention (core/retention): days; 0 keeps forever.
    retain_raw_days: int = Field(default=90, ge=0, validation_alias=_alias("THREADLINE_RETAIN_RAW_DAYS"))
    retain_failed_raw_days: int = Field(default=365, ge=0, validation_alias=_alias("THREADLINE_RETAIN_FAILED_RAW_DAYS"))
    retain_outbox_days: int = Field(default=14, ge=0, validation_alias=_alias("THREADLINE_RETAIN_OUTBOX_DAYS"))
    retain_seen_events_days: int = Field(default=7, ge=0, validation_alias=_alias("THREADLINE_RETAIN_SEEN_EVENTS_DAYS"))
    retain_orphan_blob_days: int = Field(default=7, ge=0, validation_alias=_alias("THREADLINE_RETAIN_ORPHAN_BLOB_DAYS"))
    support_address: str = Field(
        default="support@threadline.localhost", validation_alias=_alias("THREADLINE_SUPPORT_ADDRESS")
    )
    slack_channel: str | None = Field(default=None, validation_alias=_alias("THREADLINE_SLACK_CHANNEL"))
    llm: str = Field(default="extractive", validation_alias=_alias("THREADLINE_LLM"))
    embedding: str = Field(default="local-minilm", validation_alias=_alias("THREADLINE_EMBEDDING"))
    kb_min_confidence: float = Field(
        default=0.35, ge=0, le=1, validation_alias=_alias("THREADLINE_KB_MIN_CONFIDENCE")
    )
    log_level: str = Field(default="INFO", validation_alias=_alias("THREADLINE_LOG_LEVEL"))
    log_format: str = Field(default="console", validation_alias=_alias("THREADLINE_LOG_FORMAT"))
    metrics_token: SecretStr | None = Field(default=None, validation_alias=_alias("THREADLINE_METRICS_TOKEN"))
    api_docs: bool = Field(default=False, validation_alias=_alias("THREADLINE_API_DOCS"))
    worker_threads: int = Field(default=4, ge=1, validation_alias=_alias("THREADLINE_WORKER_THREADS"))
    # 0 = one per CPU core: parsing is CPU-bound Python, and one process uses one core.
    worker_processes: int = Field(default=0, ge=0, validation_alias=_alias("THREADLINE_WORKER_PROCESSES"))
    # Rows of a batchable job (ingest) one worker thread takes at once; 1 = one at a time.
    job_batch: int = Field(default=20, ge=1, le=500, validation_alias=_alias("THREADLINE_JOB_BATCH"))
    job_max_retries: int = Field(default=8, ge=0, validation_alias=_alias("THREADLINE_JOB_MAX_RETRIES"))
    job_min_backoff_ms: int = Field(default=1000, ge=0, validation_alias=_alias("THREADLINE_JOB_MIN_BACKOFF_MS"))
    max_message_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024, validation_alias=_alias("THREADLINE_MAX_MESSAGE_BYTES")
    )
    smtp_max_connections_per_ip: int = Field(
        default=20, ge=1, validation_alias=_alias("THREADLINE_SMTP_MAX_CONNECTIONS_PER_IP")
    )
    smtp_messages_per_minute: int = Field(
        default=120, ge=1, validation_alias=_alias("THREADLINE_SMTP_MESSAGES_PER_MINUTE")
    )
    smtp_tls_cert: Path | None = Field(default=None, validation_alias=_alias("THREADLINE_SMTP_TLS_CERT"))
    smtp_tls_key: Path | None = Field(default=None, validation_alias=_alias("THREADLINE_SMTP_TLS_KEY"))
    reopen_days: int = Field(default=30, ge=0, validation_alias=_alias("THREADLINE_REOPEN_DAYS"))
    sender_cap: int = Field(default=30, ge=1, validation_alias=_alias("THREADLINE_SENDER_CAP"))
    ticket_cap: int = Field(default=50, ge=1, validation_alias=_alias("THREADLINE_TICKET_CAP"))
    secret_key: SecretStr | None = Field(default=None, validation_alias=_alias("THREADLINE_SECRET_KEY"))
    smtp_trusted_networks: str = Field(
        default="127.0.0.0/8,::1/128", validation_alias=_alias("THREADLINE_SMTP_TRUSTED_NETWORKS")
    )
    trusted_authserv_ids: str = Field(default="", validation_alias=_alias("THREADLINE_TRUSTED_AUTHSERV_IDS"))
    dns_servers: str = Field(default="", validation_alias=_alias("THREADLINE_DNS_SERVERS"))
    mail_budget_seconds: float = Field(
        default=20, gt=0, validation_alias=_alias("THREADLINE_MAIL_BUDGET_SECONDS")
    )
    mail_budget_memory_mb: int = Field(
        default=1024, ge=64, validation_alias=_alias("THREADLINE_MAIL_BUDGET_MEMORY_MB")
    )
    webhook_allow_private: bool = Field(default=False, validation_alias=_alias("THREADLINE_WEBHOOK_ALLOW_PRIVATE"))
    # Attachments both ways (core/attachments): agents' files per reply, signed customer-file links.
    attachment_max_file_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, validation_alias=_alias("THREADLINE_ATTACHMENT_MAX_FILE_BYTES"))
    attachment_max_reply_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, validation_alias=_alias("THREADLINE_ATTACHMENT_MAX_REPLY_BYTES"))
    attachment_link_days: int = Field(default=7, ge=1, le=365, validation_alias=_alias("THREADLINE_ATTACHMENT_LINK_DAYS"))

    @field_validator(
        "database_url", "database_migration_url", "redis_url", "slack_bot_token", "slack_signing_secret",
        "secret_key", "metrics_token", mode="after",
    )
    @classmethod
    def _no_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        # Fail fast on copied example values instead of failing at the first request.
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder value; set the real one or unset it")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in {"console", "json"}:
            raise ValueError("must be 'console' or 'json'")
        return value

    @field_validator("dns_servers")
    @classmethod
    def _dns_addresses(cls, value: str) -> str:
        # At startup, not at the first mail: a bad item would fail every mail's SPF/DKIM/DMARC checks.
        parse_nameservers(value)  # ValueError naming the bad item
        return value

    @cached_property
    def api(self) -> ApiSettings:
        return ApiSettings(host=self.api_host, port=self.api_port)

    @cached_property
    def smtp(self) -> SmtpSettings:
        return SmtpSettings(host=self.smtp_host, port=self.smtp_port, max_message_bytes=self.max_message_bytes)

    @cached_property
    def slack(self) -> SlackSettings:
        return SlackSettings(
            bot_token=self.slack_bot_token,
            app_token=self.slack_app_token,
            signing_secret=self.slack_signing_secret,
            client_id=self.slack_client_id,
            client_secret=self.slack_client_secret,
            api_url=self.slack_api_url,
        )

    @cached_property
    def teams(self) -> TeamsSettings:
        return TeamsSettings(app_id=self.teams_app_id, app_password=self.teams_app_password)

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise ConfigurationError("DATABASE_URL is not set and no embedded database is running")
        return self.database_url.get_secret_value()

    def require_redis_url(self) -> str:
        if self.redis_url is None:
            raise ConfigurationError("REDIS_URL is not set and no embedded Redis is running")
        return self.redis_url.get_secret_value()


# Every environment variable Threadline reads, with a one-line description; README, doctor and
# the compose test all read this table, so a setting cannot exist undocumented.
SETTING_DOCS: dict[str, str] = {
    "DATABASE_URL": "Postgres URL (postgresql+psycopg://user:pass@host/db); unset = embedded Postgres",
    "DATABASE_MIGRATION_URL": "owner URL used only to migrate (and create the runtime login); unset = DATABASE_URL, or the embedded superuser",
    "THREADLINE_ALLOW_OWNER_LOGIN": "let components run as an owner/superuser/BYPASSRLS login (default false: they refuse)",
    "REDIS_URL": "Redis URL (redis://host:6379/0); unset = embedded Redis",
    "THREADLINE_DATA_DIR": "where embedded databases, blobs and state live (default ./.threadline)",
    "THREADLINE_API_HOST": "API server bind address (default 127.0.0.1)",
    "THREADLINE_API_PORT": "API server port (default 8000)",
    "THREADLINE_SMTP_HOST": "SMTP server bind address (default 127.0.0.1)",
    "THREADLINE_SMTP_PORT": "SMTP server port (default 2525)",
    "THREADLINE_PUBLIC_URL": "public base URL of the API server (links, OAuth redirects)",
    "THREADLINE_OUTBOUND_SMTP_URL": "smtp[s]://user:pass@host:port relay for outgoing mail",
    "SLACK_BOT_TOKEN": "xoxb- token for a single Slack workspace",
    "SLACK_APP_TOKEN": "xapp- token; when set, Slack connects over Socket Mode",
    "SLACK_SIGNING_SECRET": "verifies Slack's HTTP requests",
    "SLACK_CLIENT_ID": "Slack OAuth client id (multi-workspace install)",
    "SLACK_CLIENT_SECRET": "Slack OAuth client secret",
    "SLACK_API_URL": "Slack Web API base URL (tests point it at a local fake)",
    "TEAMS_APP_ID": "Microsoft Teams bot app id",
    "TEAMS_APP_PASSWORD": "Microsoft Teams bot app password",
    "TEAMS_TENANT_ID": "Azure AD tenant of a single-tenant bot; only this tenant's users act (unset = multi-tenant bot)",
    "TEAMS_API_URL": "Bot Connector service URL for new channel threads (default https://smba.trafficmanager.net/teams/; tests use a fake)",
    "TEAMS_OPENID_URL": "OpenID configuration whose JWKS signs Teams' requests (default Bot Framework's; tests use a local issuer)",
    "TEAMS_TOKEN_URL": "OAuth token endpoint for the bot's outbound token (default from TEAMS_TENANT_ID, else botframework.com)",
    "THREADLINE_UNDO_SECONDS": "undo window before an agent's reply is sent (default 10)",
    "THREADLINE_RETAIN_RAW_DAYS": "days raw inbound mail/payloads are kept once processed or ignored (default 90; 0 = forever)",
    "THREADLINE_RETAIN_FAILED_RAW_DAYS": "days failed or held raw records are kept (default 365; 0 = forever)",
    "THREADLINE_RETAIN_OUTBOX_DAYS": "days finished (done) outbox rows are kept (default 14; 0 = forever)",
    "THREADLINE_RETAIN_SEEN_EVENTS_DAYS": "days Slack/Teams event ids are remembered for de-duplication (default 7; 0 = forever)",
    "THREADLINE_RETAIN_ORPHAN_BLOB_DAYS": "days an unreferenced attachment blob is kept before removal (default 7; 0 = forever)",
    "THREADLINE_SUPPORT_ADDRESS": "first inbox's address at bootstrap (default support@threadline.localhost)",
    "THREADLINE_SLACK_CHANNEL": "first inbox's Slack channel id at bootstrap",
    "THREADLINE_LLM": "draft writer: extractive (default, offline), openai, anthropic, ollama, llamacpp",
    "THREADLINE_EMBEDDING": "embedding model: local-minilm (default, offline), openai, huggingface",
    "THREADLINE_KB_MIN_CONFIDENCE": "least question-passage similarity (0-1) for a KB draft, else none (default 0.35)",
    "THREADLINE_LOG_LEVEL": "DEBUG, INFO (default), WARNING, ERROR",
    "THREADLINE_LOG_FORMAT": "console (default) or json",
    "THREADLINE_METRICS_TOKEN": "bearer token Prometheus sends to /metrics; unset = /metrics answers 404",
    "THREADLINE_API_DOCS": "serve the interactive API docs at /docs and /redoc (default false; /openapi.json is always served)",
    "THREADLINE_WORKER_THREADS": "job worker threads per worker process (default 4)",
    "THREADLINE_WORKER_PROCESSES": "worker processes `threadline up` starts (default 0 = one per CPU core)",
    "THREADLINE_JOB_BATCH": "waiting ingest jobs one worker thread takes at once, each mail in its own "
    "transaction, outcomes recorded in one (default 20; 1 = one at a time)",
    "THREADLINE_JOB_MAX_RETRIES": "retries before a job is dead-lettered (default 8)",
    "THREADLINE_JOB_MIN_BACKOFF_MS": "first retry delay of a failed job, doubled per retry (default 1000)",
    "THREADLINE_MAX_MESSAGE_BYTES": "largest accepted mail in bytes, SMTP SIZE (default 26214400 = 25 MiB)",
    "THREADLINE_SMTP_MAX_CONNECTIONS_PER_IP": "concurrent SMTP connections per client address before 421 (default 20)",
    "THREADLINE_SMTP_MESSAGES_PER_MINUTE": "mails per client address per minute before 450 (default 120)",
    "THREADLINE_SMTP_TLS_CERT": "PEM certificate file; with the key, the SMTP server offers STARTTLS",
    "THREADLINE_SMTP_TLS_KEY": "PEM private key file for STARTTLS",
    "THREADLINE_REOPEN_DAYS": "a reply to a ticket closed longer ago opens a new linked ticket (default 30)",
    "THREADLINE_SENDER_CAP": "mails per sender per 10 minutes before further ones are quarantined (default 30)",
    "THREADLINE_TICKET_CAP": "inbound mails per ticket per 10 minutes before quarantine (default 50)",
    "THREADLINE_SECRET_KEY": "key that encrypts stored secrets; unset = generated once into the data dir",
    "THREADLINE_SMTP_TRUSTED_NETWORKS": "comma-separated CIDRs of relays exempt from per-IP SMTP limits (default loopback)",
    "THREADLINE_TRUSTED_AUTHSERV_IDS": "comma-separated authserv-ids whose Authentication-Results headers are trusted",
    "THREADLINE_DNS_SERVERS": "DNS servers for SPF/DKIM/DMARC: comma-separated IP or IP:port ([v6]:port), checked at startup and queried by doctor; unset = system's",
    "THREADLINE_MAIL_BUDGET_SECONDS": "wall-clock limit for analysing one mail; past it the mail is failed and kept (default 20)",
    "THREADLINE_MAIL_BUDGET_MEMORY_MB": "memory limit of the process that analyses mail, in MiB (default 1024)",
    "THREADLINE_WEBHOOK_ALLOW_PRIVATE": "deliver webhooks to loopback/private addresses too (default false)",
    "THREADLINE_ATTACHMENT_MAX_FILE_BYTES": "largest file an agent's reply may carry, in bytes (default 10485760 = 10 MiB)",
    "THREADLINE_ATTACHMENT_MAX_REPLY_BYTES": "largest total of files on one agent reply, in bytes (default 20971520 = 20 MiB)",
    "THREADLINE_ATTACHMENT_LINK_DAYS": "days a signed link to a customer's attachment (posted in Slack/Teams) stays valid (default 7)",
}


def load_settings() -> Settings:
    """Read settings from the environment (and .env). Call from entry points only."""
    return Settings()
