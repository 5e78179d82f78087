"""`threadline teams manifest` writes an uploadable app package."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli.main import build_cli
from core.registry import Registry, load_plugins
from tests.bots.teams.conftest import APP_ID


def test_manifest_command_writes_a_package_with_the_rsc_permission_and_two_icons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEAMS_APP_ID", APP_ID)
    out = tmp_path / "threadline-teams.zip"
    result = CliRunner().invoke(build_cli(load_plugins(Registry())), ["teams", "manifest", "--output", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        icons = {name: zf.read(name) for name in ("color.png", "outline.png")}
    assert manifest["bots"][0]["botId"] == APP_ID
    assert {"name": "ChannelMessage.Read.Group", "type": "Application"} in (
        manifest["authorization"]["permissions"]["resourceSpecific"])
    assert all(data.startswith(b"\x89PNG\r\n\x1a\n") for data in icons.values())


def test_manifest_command_refuses_a_bot_id_that_is_not_a_guid(tmp_path: Path) -> None:
    args = ["teams", "manifest", "--output", str(tmp_path / "x.zip"), "--bot-id", "not-a-guid"]
    result = CliRunner().invoke(build_cli(load_plugins(Registry())), args)
    assert result.exit_code == 1 and not (tmp_path / "x.zip").exists()
