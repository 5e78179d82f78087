"""Encrypt small secrets at rest (IMAP passwords) with Fernet: AES-128-CBC + HMAC-SHA256.

The key material is THREADLINE_SECRET_KEY or, when unset, a random key generated once into
`<data_dir>/secret.key` (mode 0600) and reused by every process sharing that data dir (`up`).
Material of any shape is stretched into a Fernet key with HKDF (RFC 5869), so an operator may set
any long random string. Several containers with separate data dirs must share THREADLINE_SECRET_KEY.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"
_HKDF_INFO = b"threadline secretbox v1"


class SecretDecryptError(ConfigurationError):
    """A stored secret cannot be decrypted: the key changed, or the value was tampered with."""


def derive_key(material: str | bytes) -> bytes:
    """A Fernet key (urlsafe base64 of 32 bytes) from key material of any length."""
    raw = material.encode() if isinstance(material, str) else material
    if not raw.strip():
        raise ConfigurationError("the secret key is empty")
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)
    return base64.urlsafe_b64encode(okm)


def encrypt(plaintext: str, *, key: bytes) -> str:
    """An opaque ASCII token (it carries its own timestamp and MAC)."""
    return Fernet(key).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str, *, key: bytes) -> str:
    try:
        return Fernet(key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise SecretDecryptError(
            "a stored secret cannot be decrypted: THREADLINE_SECRET_KEY (or <data dir>/secret.key) "
            "is not the key it was stored with; set the original key or store the secret again"
        ) from None


def load_or_create_key_file(path: Path) -> str:
    """Read the key file, creating it first if absent. Safe when several processes start at once."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic: exactly one creator wins, the others read its key
                log.info("generated a new secret key", extra={"path": str(path)})
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the secret key file is readable by other users; chmod 600 it", extra={"path": str(path)})
    material = path.read_text().strip()
    if not material:
        raise ConfigurationError(f"{path} is empty: restore it from a backup or remove it to start over")
    return material


class SecretBox:
    """Encrypts and decrypts with one key; build it with `from_settings` in entry points."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        Fernet(key)  # fail now, not at first use, on a malformed key

    @classmethod
    def from_material(cls, material: str | bytes) -> SecretBox:
        return cls(derive_key(material))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            return cls.from_material(settings.secret_key.get_secret_value())
        return cls.from_material(load_or_create_key_file(settings.data_dir / KEY_FILE))

    def encrypt(self, plaintext: str) -> str:
        return encrypt(plaintext, key=self._key)

    def decrypt(self, token: str) -> str:
        return decrypt(token, key=self._key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"
