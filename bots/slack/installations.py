"""Slack workspaces installed over OAuth, each bound to one tenant; bot tokens encrypted at rest.

Binding: an operator prints an install link for a tenant (`threadline slack install-link`). The
link carries the tenant id sealed with the deployment's SecretBox (Fernet: AES + HMAC-SHA256,
so nobody without THREADLINE_SECRET_KEY / secret.key can forge or alter it) and an expiry. Opening
it stores a random single-use OAuth `state` bound to that tenant; Slack's redirect hands the state
back, which is how the workspace is bound to the right tenant.

One active workspace per tenant (its inboxes' channels live there), and a workspace is bound to one
tenant: binding it to another needs `threadline slack disconnect` on the first one.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from bots.slack.ids import SURFACE
from core.crypto import SecretBox, SecretDecryptError
from core.db.session import system_scope, tenant_scope
from core.errors import Conflict, InvalidInput, NotFound
from core.settings import Settings
from core.surfaces.models import SurfaceInstallation, SurfaceOAuthState
from core.tenancy.models import Tenant

INSTALL_LINK_TTL = timedelta(hours=1)
STATE_TTL = timedelta(minutes=10)
CACHE_SECONDS = 60.0  # a token rotated or revoked elsewhere is picked up within this long
_LINK_PURPOSE = "slack-install"
_INSTALL_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('slack:installations', 0))")


def oauth_configured(settings: Settings) -> bool:
    return settings.slack_client_id is not None and settings.slack_client_secret is not None


def slack_configured(settings: Settings) -> bool:
    """Whether any tenant can have a Slack bot: a single-workspace token, or installs over OAuth."""
    return settings.slack_bot_token is not None or oauth_configured(settings)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------ install links


def make_install_token(settings: Settings, *, tenant_id: uuid.UUID, now: datetime | None = None) -> str:
    expires = int(((now or _now()) + INSTALL_LINK_TTL).timestamp())
    return SecretBox.from_settings(settings).encrypt(f"{_LINK_PURPOSE}:{tenant_id}:{expires}")


def install_url(settings: Settings, *, tenant_id: uuid.UUID) -> str:
    token = make_install_token(settings, tenant_id=tenant_id)
    return f"{settings.public_url.rstrip('/')}/slack/install?{urlencode({'t': token})}"


def read_install_token(settings: Settings, token: str, *, now: datetime | None = None) -> uuid.UUID:
    """The tenant an install link was made for; InvalidInput when forged, altered or expired."""
    try:
        purpose, tenant, expires = SecretBox.from_settings(settings).decrypt(token).split(":")
        tenant_id, expires_at = uuid.UUID(tenant), int(expires)
    except (SecretDecryptError, ValueError):
        raise InvalidInput("this install link is not valid: ask your Threadline admin for a new one") from None
    if purpose != _LINK_PURPOSE:
        raise InvalidInput("this install link is not valid: ask your Threadline admin for a new one")
    if (now or _now()).timestamp() >= expires_at:
        raise InvalidInput("this install link has expired: ask your Threadline admin for a new one")
    return tenant_id


# ------------------------------------------------------------------------------------ OAuth states


def create_state(factory: sessionmaker[Session], *, tenant_id: uuid.UUID) -> str:
    state, now = secrets.token_urlsafe(32), _now()
    with system_scope(factory) as session:
        if session.get(Tenant, tenant_id) is None:
            raise NotFound("the tenant of this install link no longer exists")
        session.execute(delete(SurfaceOAuthState).where(SurfaceOAuthState.expires_at < now - timedelta(days=1)))
        session.add(SurfaceOAuthState(state=state, tenant_id=tenant_id, expires_at=now + STATE_TTL))
    return state


def consume_state(factory: sessionmaker[Session], *, state: str) -> uuid.UUID:
    """The tenant bound to this state, once: a second use, an unknown or an expired state is refused."""
    now = _now()
    with system_scope(factory) as session:
        tenant_id = session.execute(
            update(SurfaceOAuthState)
            .where(SurfaceOAuthState.state == state, SurfaceOAuthState.consumed_at.is_(None),
                   SurfaceOAuthState.expires_at > now)
            .values(consumed_at=now)
            .returning(SurfaceOAuthState.tenant_id)
        ).scalar_one_or_none()
    if tenant_id is None:
        raise InvalidInput("this installation attempt has expired or was already used: open the install link again")
    return tenant_id


# ------------------------------------------------------------------------------------ installations


@dataclass(frozen=True)
class SlackBot:
    """What acting as the bot in one workspace needs. The token never shows in a repr or a log."""

    tenant_id: uuid.UUID
    team_id: str
    enterprise_id: str | None
    bot_user_id: str
    bot_id: str | None
    token: str = field(repr=False)


def save_installation(
    factory: sessionmaker[Session], *, box: SecretBox, bot: SlackBot, scopes: str, installer_user_id: str | None
) -> None:
    """Store (or refresh) the workspace's installation for `bot.tenant_id`, the token encrypted.
    The tenant's previous workspace, if another, stops being used."""
    now = _now()
    with system_scope(factory) as session:
        session.execute(_INSTALL_LOCK)  # installs are rare: serialise them, no unique-violation races
        row = session.execute(select(SurfaceInstallation).where(
            SurfaceInstallation.surface == SURFACE, SurfaceInstallation.workspace_id == bot.team_id,
            SurfaceInstallation.enterprise_id.is_not_distinct_from(bot.enterprise_id))).scalar_one_or_none()
        if row is not None and row.revoked_at is None and row.tenant_id != bot.tenant_id:
            raise Conflict("this Slack workspace is already connected to another Threadline tenant: ask your "
                           "Threadline admin to disconnect it there first (threadline slack disconnect)")
        session.execute(update(SurfaceInstallation).where(
            SurfaceInstallation.tenant_id == bot.tenant_id, SurfaceInstallation.surface == SURFACE,
            SurfaceInstallation.workspace_id != bot.team_id, SurfaceInstallation.revoked_at.is_(None),
        ).values(revoked_at=now))
        if row is None:
            row = SurfaceInstallation(surface=SURFACE, workspace_id=bot.team_id, enterprise_id=bot.enterprise_id)
            session.add(row)
        row.tenant_id, row.bot_user_id, row.bot_id = bot.tenant_id, bot.bot_user_id, bot.bot_id
        row.bot_token_encrypted = box.encrypt(bot.token)
        row.scopes, row.installer_user_id, row.installed_at, row.revoked_at = scopes, installer_user_id, now, None
    _cache.clear()


def disconnect(factory: sessionmaker[Session], *, tenant_id: uuid.UUID) -> list[str]:
    """Stop using the tenant's workspace(s); the ids of the workspaces disconnected."""
    with system_scope(factory) as session:
        teams = list(session.execute(
            update(SurfaceInstallation)
            .where(SurfaceInstallation.tenant_id == tenant_id, SurfaceInstallation.surface == SURFACE,
                   SurfaceInstallation.revoked_at.is_(None))
            .values(revoked_at=_now())
            .returning(SurfaceInstallation.workspace_id)
        ).scalars())
    _cache.clear()
    return teams


class _TtlCache:
    """Positive answers only: a workspace installed a moment ago must be found at once."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._items: dict[tuple[object, ...], tuple[float, SlackBot]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> SlackBot | None:
        with self._lock:
            hit = self._items.get(key)
            return hit[1] if hit and hit[0] > time.monotonic() else None

    def put(self, key: tuple[object, ...], bot: SlackBot) -> None:
        now = time.monotonic()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v[0] > now}
            self._items[key] = (now + self._seconds, bot)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _TtlCache(CACHE_SECONDS)


def _active_bot(
    settings: Settings, key: tuple[object, ...], scope: AbstractContextManager[Session], *where: ColumnElement[bool]
) -> SlackBot | None:
    if (hit := _cache.get(key)) is not None:
        return hit
    with scope as session:
        row = session.execute(
            select(SurfaceInstallation).where(SurfaceInstallation.surface == SURFACE,
                                              SurfaceInstallation.revoked_at.is_(None), *where)
            .order_by(SurfaceInstallation.installed_at.desc()).limit(1)
        ).scalar_one_or_none()
    if row is None:
        return None
    bot = SlackBot(row.tenant_id, row.workspace_id, row.enterprise_id, row.bot_user_id, row.bot_id,
                   SecretBox.from_settings(settings).decrypt(row.bot_token_encrypted))
    _cache.put(key, bot)
    return bot


def bot_for_tenant(settings: Settings, factory: sessionmaker[Session], *, tenant_id: uuid.UUID) -> SlackBot | None:
    # The factory is part of the key: several runtimes (tests) may share one process.
    return _active_bot(settings, ("tenant", factory, tenant_id), tenant_scope(factory, tenant_id),
                       SurfaceInstallation.tenant_id == tenant_id)


def bot_for_team(
    settings: Settings, factory: sessionmaker[Session], *, team_id: str | None, enterprise_id: str | None
) -> SlackBot | None:
    if not team_id:
        return None  # org-wide (Enterprise Grid) installs are not supported
    # System scope: the workspace is what tells us the tenant.
    return _active_bot(settings, ("team", factory, team_id, enterprise_id), system_scope(factory),
                       SurfaceInstallation.workspace_id == team_id,
                       SurfaceInstallation.enterprise_id.is_not_distinct_from(enterprise_id))
