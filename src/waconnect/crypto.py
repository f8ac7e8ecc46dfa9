"""Secrets at rest: Fernet encryption with the deployment's key, and masking.

This is the one place that decides what a secret looks like when stored or shown.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

MASK = "••••"
_SECRET_HINTS = ("key", "token", "secret", "auth", "password")


def is_secret_name(name: str) -> bool:
    """Header or field names whose values are secrets (``Authkey``, ``X-Api-Token``, ...)."""
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def mask(value: str | None) -> str | None:
    """``••••0122``: enough to recognise a secret, never enough to use it."""
    if value is None:
        return None
    return MASK + value[-4:] if len(value) > 8 else MASK


def is_masked(value: str | None) -> bool:
    return value is not None and value.startswith(MASK)


class SecretBox:
    """Encrypts and decrypts provider secrets with one key."""

    def __init__(self, key_material: str) -> None:
        # Any string is accepted as WACONNECT_SECRET_KEY; derive a valid Fernet key from it.
        digest = hashlib.sha256(key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored secret cannot be decrypted: WACONNECT_SECRET_KEY differs from the key "
                "it was encrypted with"
            ) from exc

    @classmethod
    def from_settings(cls, secret_key: str | None, data_dir: Path) -> SecretBox:
        if secret_key:
            return cls(secret_key)
        return cls(_key_file(data_dir))


def _key_file(data_dir: Path) -> str:
    """A single node's key, made on first start; every node of a cluster must share one instead."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
