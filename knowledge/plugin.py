"""knowledge's registration: the `threadline kb` commands. Nothing heavy is imported here."""

from __future__ import annotations

from core.registry import Registry
from knowledge.cli import register_cli


def register(registry: Registry) -> None:
    registry.add_cli(register_cli(registry))
