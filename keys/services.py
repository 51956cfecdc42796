"""Creating API keys and hashing their secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import Account
from keys.models import ApiKey

_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 48  # base62: about 285 bits
LOOKUP_LENGTH = 12
DISPLAY_LENGTH = 6


@dataclass(frozen=True)
class ParsedKey:
    lookup: str
    full: str


def key_parse(raw: str) -> ParsedKey | None:
    """The lookup part of a presented key, or None if it is not PureBridge-shaped."""
    prefix = settings.PUREBRIDGE_KEY_PREFIX
    if not raw.startswith(prefix):
        return None
    body = raw[len(prefix) :]
    if len(body) != SECRET_LENGTH or not body.isalnum() or not body.isascii():
        return None
    return ParsedKey(lookup=body[:LOOKUP_LENGTH], full=raw)


def key_hash(raw: str) -> str:
    secret = settings.PUREBRIDGE_KEY_HASH_SECRET.encode()
    return hmac.new(secret, raw.encode(), hashlib.sha256).hexdigest()


def key_hash_matches(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(raw), stored_hash)


def _key_generate() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    return settings.PUREBRIDGE_KEY_PREFIX + body


@transaction.atomic
def key_create(
    *,
    account: Account,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    quota_usd: Decimal | None = None,
    daily_budget_usd: Decimal | None = None,
    monthly_budget_usd: Decimal | None = None,
    notification_email: str = "",
) -> tuple[ApiKey, str]:
    """Create a key; returns the record and the secret, which is never stored."""
    for _ in range(5):
        raw = _key_generate()
        parsed = key_parse(raw)
        assert parsed is not None
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    account=account,
                    name=name,
                    lookup=parsed.lookup,
                    secret_hash=key_hash(raw),
                    display_prefix=raw[: len(settings.PUREBRIDGE_KEY_PREFIX) + DISPLAY_LENGTH],
                    expires_at=expires_at,
                    allowed_models=sorted(set(allowed_models or [])),
                    rpm_limit=rpm_limit,
                    tpm_limit=tpm_limit,
                    quota_usd=quota_usd,
                    daily_budget_usd=daily_budget_usd,
                    monthly_budget_usd=monthly_budget_usd,
                    notification_email=notification_email,
                )
        except IntegrityError:  # lookup collision: astronomically rare, try again
            continue
        return api_key, raw
    raise RuntimeError("could not allocate a unique key lookup")


def key_set_active(*, api_key: ApiKey, active: bool) -> ApiKey:
    api_key.is_active = active
    api_key.save(update_fields=["is_active", "updated_at"])
    return api_key
