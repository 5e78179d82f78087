"""Everything a Teams listener needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from bots.surface.deps import SurfaceDeps
from bots.teams.auth import RequestVerifier
from bots.teams.connector import Connector
from bots.teams.users import TeamsDirectory


@dataclass(frozen=True)
class TeamsDeps:
    surface: SurfaceDeps
    connector: Connector
    users: TeamsDirectory
    verifier: RequestVerifier
