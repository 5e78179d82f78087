"""core.crypto: secrets at rest (lives here beside its only user; mirrors core/crypto.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core.crypto import KEY_FILE, SecretBox, SecretDecryptError
from core.settings import Settings


def test_a_secret_round_trips_and_the_token_does_not_contain_it(tmp_path: Path) -> None:
    box = SecretBox.from_settings(Settings(THREADLINE_DATA_DIR=tmp_path))
    token = box.encrypt("hunter2-imap")
    assert "hunter2" not in token
    assert box.decrypt(token) == "hunter2-imap"


def test_without_a_setting_the_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    token = SecretBox.from_settings(Settings(THREADLINE_DATA_DIR=tmp_path)).encrypt("pw")
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.from_settings(Settings(THREADLINE_DATA_DIR=tmp_path)).decrypt(token) == "pw"


def test_the_setting_wins_over_the_key_file(tmp_path: Path) -> None:
    settings = Settings(THREADLINE_DATA_DIR=tmp_path, THREADLINE_SECRET_KEY="a-long-random-operator-key-0123456789")
    token = SecretBox.from_settings(settings).encrypt("pw")
    assert not (tmp_path / KEY_FILE).exists()
    assert SecretBox.from_material("a-long-random-operator-key-0123456789").decrypt(token) == "pw"


def test_a_different_key_fails_in_plain_words(tmp_path: Path) -> None:
    token = SecretBox.from_material("key-one-0123456789abcdef").encrypt("pw")
    with pytest.raises(SecretDecryptError, match="THREADLINE_SECRET_KEY"):
        SecretBox.from_material("key-two-0123456789abcdef").decrypt(token)


def test_the_box_never_shows_its_key() -> None:
    assert "key" in repr(SecretBox.from_material("0123456789abcdef")) and "0123" not in repr(
        SecretBox.from_material("0123456789abcdef")
    )
