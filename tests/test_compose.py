"""compose.yaml (Docker cannot run here): every command is real, every variable documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main
import yaml

from core.cli.main import build_cli
from core.registry import Registry, load_plugins
from core.settings import SETTING_DOCS

ROOT = Path(__file__).resolve().parents[1]
# Variables for the third-party images or compose itself, documented in the README's compose section.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "RUNTIME_DB_PASSWORD"}


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _threadline_services() -> dict[str, dict]:  # type: ignore[type-arg]
    return {name: svc for name, svc in _compose()["services"].items() if svc.get("image", "").startswith("threadline")}


def _cli_commands() -> set[str]:
    group = typer.main.get_command(build_cli(load_plugins(Registry())))
    return set(group.commands)  # type: ignore[attr-defined]


def test_every_threadline_service_runs_a_real_subcommand() -> None:
    commands = _cli_commands()
    used = {name: svc["command"][0] for name, svc in _threadline_services().items()}
    assert {"api", "worker", "scheduler"} <= set(used.values())
    assert {name: cmd for name, cmd in used.items() if cmd not in commands} == {}


def test_every_variable_threadline_services_set_is_a_documented_setting() -> None:
    undocumented = {
        (name, key)
        for name, svc in _threadline_services().items()
        for key in svc.get("environment", {})
        if key not in SETTING_DOCS
    }
    assert undocumented == set()


def test_every_interpolated_variable_is_documented() -> None:
    text = (ROOT / "compose.yaml").read_text() + (ROOT / ".env.example").read_text()
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", text)) | set(re.findall(r"^([A-Z0-9_]+)=", text, re.M))
    readme = (ROOT / "README.md").read_text()
    assert {n for n in names if n not in SETTING_DOCS and n not in COMPOSE_ONLY} == set()
    assert {n for n in names if n not in readme} == set()


def test_data_services_have_health_checks() -> None:
    services = _compose()["services"]
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "api"))
    assert services["postgres"]["image"].startswith("pgvector/pgvector")


def test_only_the_migrate_service_holds_the_owner_url() -> None:
    holders = {name for name, svc in _threadline_services().items() if "DATABASE_MIGRATION_URL" in svc.get("environment", {})}
    runtime_urls = {svc["environment"]["DATABASE_URL"] for svc in _threadline_services().values() if "environment" in svc}
    assert holders == {"migrate"}
    assert all(url.startswith("postgresql+psycopg://threadline_runtime:") for url in runtime_urls)
