"""`threadline teams ...`: the app package to upload into Teams."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bots.teams.manifest import app_package
from core.cli.context import fail
from core.errors import InvalidInput
from core.registry import Registry
from core.settings import Settings


def add_teams_cli(app: Any, registry: Registry) -> None:
    teams = typer.Typer(help="Microsoft Teams: the app package to upload.", no_args_is_help=True)
    app.add_typer(teams, name="teams")

    @teams.command("manifest", help="Write the Teams app package (manifest.json with the ChannelMessage.Read.Group "
                                    "permission, and icons) as a zip to upload in Teams.")
    def manifest_cmd(
        output: Annotated[Path, typer.Option("--output", "-o", help="where to write the .zip")],
        bot_id: Annotated[str | None, typer.Option("--bot-id", help="Azure bot app id (default TEAMS_APP_ID)")] = None,
    ) -> None:
        settings = Settings()
        bot = bot_id or settings.teams_app_id
        if not bot:
            raise fail("TEAMS_APP_ID is not set (or pass --bot-id): the package names the Azure bot")
        try:
            data = app_package(bot_id=bot, public_url=settings.public_url)
        except InvalidInput as exc:
            raise fail(str(exc)) from None
        output.write_bytes(data)
        typer.echo(f"wrote {output} ({len(data)} bytes): upload it in Teams, Apps > Manage your apps > Upload an app")
