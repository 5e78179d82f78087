"""Settings fail fast on bad values; logs never carry secrets; every setting is documented."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.logs import JsonFormatter, redact
from core.settings import SETTING_DOCS, Settings

ROOT = Path(__file__).resolve().parents[1]


def test_placeholder_secrets_are_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(SLACK_BOT_TOKEN="changeme")


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValidationError, match="console"):
        Settings(THREADLINE_LOG_FORMAT="xml")


def test_environment_names_are_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_UNDO_SECONDS", "3")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")
    s = Settings()
    assert (s.undo_seconds, s.slack.api_url) == (3, "http://127.0.0.1:9/api/")


def test_every_setting_field_is_documented_in_the_table_and_readme() -> None:
    aliases = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        aliases.add(alias.choices[0] if hasattr(alias, "choices") else alias)  # type: ignore[union-attr]
    readme = (ROOT / "README.md").read_text()
    assert aliases == set(SETTING_DOCS)
    assert [name for name in SETTING_DOCS if f"`{name}`" not in readme] == []


def test_readme_lists_ticket_statuses_and_its_status_filters_exist() -> None:
    """Regression: the README's `status=open` example returned [] on a new install (tickets start `new`)."""
    from core.tickets.models import TicketStatus

    readme = (ROOT / "README.md").read_text()
    used = set(re.findall(r"[?&]status=(\w+)", readme))
    valid = {s.value for s in TicketStatus}
    assert (used - valid, [s for s in valid if f"`{s}`" not in readme], "status=new" in readme) == (set(), [], True)


@pytest.mark.parametrize(
    "secret",
    [
        "xoxb-1234-5678-abcdefABCDEF",
        "xapp-1-A0-123-abcdef",
        "tl_0123456789ab_abcdefghijklmnopqrstuvwxyz012345",
        "postgresql+psycopg://threadline:hunter2@db:5432/threadline",
    ],
)
def test_secrets_are_redacted_from_log_messages(secret: str) -> None:
    out = redact(f"connecting with {secret} now")
    assert "hunter2" not in out and "abcdef" not in out and "[redacted]" in out


def test_secret_named_fields_are_redacted_in_json_logs() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "calling slack", None, None)
    record.token = "plain-value"
    record.ticket = 42
    line = json.loads(JsonFormatter().format(record))
    assert (line["token"], line["ticket"], line["msg"]) == ("[redacted]", 42, "calling slack")


def test_uvicorn_color_message_and_aiosmtpd_session_lines_stay_off_the_info_console(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression: raw `color_message=` escape codes, and "Connection lost" at INFO after a normal QUIT."""
    from core.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("mail.log").filters[:])
    try:
        configure_logging("INFO", "console")
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 7, extra={"color_message": "\x1b[1m7"})
        logging.getLogger("mail.log").info("('127.0.0.1', 5) Connection lost during _handle_client()")
        logging.getLogger("mail.log").warning("SMTP session exception")
        err = capsys.readouterr().err
    finally:
        root.handlers[:], logging.getLogger("mail.log").filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])
    assert ("color_message" in err, "\x1b" in err, "Connection lost" in err, "SMTP session exception" in err) == (
        False, False, False, True)
