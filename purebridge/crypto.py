"""Symmetric encryption for secrets kept in the database (provider API keys)."""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@functools.cache
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(b"purebridge:secrets-at-rest:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet(settings.PUREBRIDGE_ENCRYPTION_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet(settings.PUREBRIDGE_ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "a stored secret cannot be decrypted: PUREBRIDGE_ENCRYPTION_KEY (or SECRET_KEY) changed"
        ) from None
