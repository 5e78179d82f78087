"""Identified visitors: the site's server vouches for its user, by HMAC or by a short-lived JWT.

Both are signed with the inbox's identity secret, which is stored encrypted (core/crypto.py
SecretBox) in `widget_config["identity_secret_sealed"]` and decrypted only to check a signature.

* HMAC: `user_hash` = hex HMAC-SHA256(secret, user_id). It never expires, so a leaked hash is a
  permanent login as that user; sites that can should prefer the JWT.
* JWT: HS256 only (the algorithm is pinned: no `none`, no RS/HS confusion), `sub` is the user id,
  `exp` is required, at most JWT_MAX_LIFETIME ahead, with JWT_LEEWAY of clock skew either way;
  an optional `email` (and `name`) claim is a verified address.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.crypto import SecretBox
from core.errors import UserError
from core.tenancy.models import Inbox
from inbound.widget.config import SEALED_SECRET_KEY, IdentityMode, WidgetConfig

JWT_ALGORITHM = "HS256"
JWT_LEEWAY = 60  # seconds of clock skew between the site's server and ours
JWT_MAX_LIFETIME = 15 * 60  # "short-lived": a page load's worth, not a session cookie's
MIN_SECRET_LENGTH = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash output


class IdentityRefusedError(UserError):
    """Enforce mode and the identity is not signed (or signed wrongly, or expired)."""


@dataclass(frozen=True)
class Identity:
    external_id: str | None
    verified: bool
    email: str | None = None  # only from a verified JWT's `email` claim
    name: str | None = None


def check_identity(config: WidgetConfig, box: SecretBox, *, user_id: str | None, user_hash: str | None,
                   user_jwt: str | None = None, now: float | None = None) -> Identity:
    """The verified identity, an unverified one (kept as nothing), or IdentityRefusedError in enforce mode."""
    if config.identity_mode is IdentityMode.OFF or not (user_id or user_jwt):
        return Identity(None, False)
    secret = box.decrypt(config.identity_secret_sealed) if config.identity_secret_sealed else None
    identity = Identity(None, False)
    if secret and user_jwt:
        identity = _from_jwt(secret, user_jwt, now=now)
    elif secret and user_id and user_hash:
        expected = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, user_hash.lower()):
            identity = Identity(user_id, True)
    if not identity.verified and config.identity_mode is IdentityMode.ENFORCE:
        raise IdentityRefusedError("this site verifies identities and the one given is not signed (or has expired)")
    return identity


def _from_jwt(secret: str, token: str, *, now: float | None) -> Identity:
    """PyJWT checks the signature, the pinned algorithm and that `exp`/`sub` exist; the times are
    checked here against one clock (so tests can pass `now`), all with the same leeway."""
    clock = now if now is not None else time.time()
    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={
            "require": ["exp", "sub"], "verify_exp": False, "verify_iat": False, "verify_nbf": False,
        })
    except jwt.PyJWTError:
        return Identity(None, False)
    exp, iat, nbf = claims["exp"], claims.get("iat"), claims.get("nbf")
    if not isinstance(exp, int | float) or exp + JWT_LEEWAY < clock:
        return Identity(None, False)  # expired
    if exp - clock > JWT_MAX_LIFETIME + JWT_LEEWAY:
        return Identity(None, False)  # a far-future exp is a long-lived token, whatever iat says
    if iat is not None and (not isinstance(iat, int | float) or exp - iat > JWT_MAX_LIFETIME
                            or iat - clock > JWT_LEEWAY):
        return Identity(None, False)
    if nbf is not None and (not isinstance(nbf, int | float) or nbf - clock > JWT_LEEWAY):
        return Identity(None, False)
    sub, email, name = claims["sub"], claims.get("email"), claims.get("name")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        return Identity(None, False)
    ok_email = email.strip().lower() if isinstance(email, str) and "@" in email and len(email) <= 320 else None
    return Identity(sub, True, ok_email, name[:200] if isinstance(name, str) else None)


def set_identity_secret(*, session: Session, inbox_id: uuid.UUID, secret: str | None, box: SecretBox) -> None:
    """Store (or, with None, remove) an inbox's identity secret, sealed; the caller commits."""
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise UserError(f"an identity secret needs at least {MIN_SECRET_LENGTH} characters")
    inbox = session.execute(select(Inbox).where(Inbox.id == inbox_id).with_for_update()).scalar_one()
    config = {k: v for k, v in (inbox.widget_config or {}).items() if k not in ("identity_secret", SEALED_SECRET_KEY)}
    if secret is not None:
        config[SEALED_SECRET_KEY] = box.encrypt(secret)
    inbox.widget_config = config  # a new dict: JSONB columns track assignment, not in-place edits
