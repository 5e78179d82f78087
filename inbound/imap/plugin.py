"""Registers the IMAP poller: the `imap` component of `threadline up` and the `imap`/`inbox` commands."""

from __future__ import annotations

from typing import Any

from core.registry import Component, Registry


def register(registry: Registry) -> None:
    registry.add_component(
        Component(
            name="imap",
            command=("imap",),
            describe=lambda _settings: "IMAP poller (accounts from `threadline inbox imap`; IDLE where offered)",
            order=40,
        )
    )

    def add_cli(app: Any) -> None:
        from inbound.imap.cli import add_commands  # typer and imapclient load only when the CLI is built

        add_commands(app, registry)

    registry.add_cli(add_cli)
