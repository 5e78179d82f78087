"""Changing an inbox's widget settings (the `threadline widget set` command calls this).

Validates with the same rules the widget reads with (config.py), so a setting that would be
ignored or silently fall back is refused here instead; the identity secret goes through
`set_identity_secret` (sealed). Takes `session` keyword-only and never commits.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.crypto import SecretBox
from core.errors import UserError
from core.tenancy.models import Inbox
from inbound.widget.config import IdentityMode, WidgetConfig, is_hex_color, parse_pattern
from inbound.widget.identity import set_identity_secret


@dataclass(frozen=True)
class WidgetChanges:
    """None leaves a setting as it is."""

    allowed_origins: tuple[str, ...] | None = None
    identity_mode: IdentityMode | None = None
    identity_secret: str | None = None
    title: str | None = None
    color: str | None = None


def update_widget(*, session: Session, inbox_id: uuid.UUID, changes: WidgetChanges, box: SecretBox) -> WidgetConfig:
    """Apply the changes to the inbox's widget_config; returns the settings as the widget will read them."""
    for origin in changes.allowed_origins or ():
        if parse_pattern(origin) is None:
            raise UserError(f"not an origin: {origin!r} (write https://shop.example or https://*.example.com)")
    if changes.color is not None and not is_hex_color(changes.color):
        raise UserError(f"not a colour: {changes.color!r} (write #0b5fff)")
    if changes.title is not None and not 0 < len(changes.title.strip()) <= 80:
        raise UserError("the title must be 1-80 characters")
    if changes.identity_secret is not None:
        set_identity_secret(session=session, inbox_id=inbox_id, secret=changes.identity_secret, box=box)
    inbox = session.execute(select(Inbox).where(Inbox.id == inbox_id).with_for_update()).scalar_one()
    config = dict(inbox.widget_config or {})
    if changes.allowed_origins is not None:
        config["allowed_origins"] = list(changes.allowed_origins)
    if changes.identity_mode is not None:
        config["identity_mode"] = changes.identity_mode.value
    if changes.title is not None:
        config["title"] = changes.title.strip()
    if changes.color is not None:
        config["color"] = changes.color
    effective = WidgetConfig.from_json(config)
    if effective.identity_mode is not IdentityMode.OFF and effective.identity_secret_sealed is None:
        raise UserError("identity verification needs an identity secret: pass --identity-secret-stdin")
    inbox.widget_config = config  # a new dict: JSONB columns track assignment, not in-place edits
    session.flush()
    return effective


def snippet(*, public_url: str, inbox_id: uuid.UUID, config: WidgetConfig) -> str:
    """The tag to paste before </body> on the allowed sites."""
    base = public_url.rstrip("/")
    return (f'<script async src="{html.escape(base)}/widget/v1/loader.js" data-inbox="{inbox_id}"\n'
            f'        data-label="{html.escape(config.title)}" data-color="{html.escape(config.color)}"></script>')
