"""What the surface layer needs from the running process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.registry import Registry
from core.settings import Settings


@dataclass(frozen=True)
class SurfaceDeps:
    settings: Settings
    factory: sessionmaker[Session]
    registry: Registry


@dataclass(frozen=True)
class SurfaceUser:
    """An agent as a surface knows them (Slack user id + profile from users.info)."""

    surface: str
    user_id: str
    name: str
    email: str | None
