"""API keys: creating, changing, rotating and deleting them, and hashing their secrets.

Every write goes through save() or delete() so the post_save / post_delete
invalidation (gateway/invalidation.py) reaches every web worker's key cache.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from keys.models import ApiKey
from keys.networks import networks_parse

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


def _fresh_secret() -> tuple[str, str]:
    """A new secret and its lookup, the lookup in use by no key's current or
    previous secret. The unique indexes still guard the (astronomically rare)
    race; callers retry on IntegrityError."""
    for _ in range(5):
        raw = _key_generate()
        parsed = key_parse(raw)
        assert parsed is not None
        taken = ApiKey.objects.filter(Q(lookup=parsed.lookup) | Q(previous_lookup=parsed.lookup))
        if not taken.exists():
            return raw, parsed.lookup
    raise RuntimeError("could not allocate a unique key lookup")


def _display_prefix(raw: str) -> str:
    return raw[: len(settings.PUREBRIDGE_KEY_PREFIX) + DISPLAY_LENGTH]


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
    allowed_ips: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the record and the secret, which is never stored."""
    for _ in range(5):
        raw, lookup = _fresh_secret()
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    account=account,
                    name=name,
                    lookup=lookup,
                    secret_hash=key_hash(raw),
                    display_prefix=_display_prefix(raw),
                    expires_at=expires_at,
                    allowed_models=sorted(set(allowed_models or [])),
                    rpm_limit=rpm_limit,
                    tpm_limit=tpm_limit,
                    quota_usd=quota_usd,
                    daily_budget_usd=daily_budget_usd,
                    monthly_budget_usd=monthly_budget_usd,
                    notification_email=notification_email,
                    allowed_ips=networks_parse(allowed_ips or []),
                )
        except IntegrityError:  # lookup collision: astronomically rare, try again
            continue
        return api_key, raw
    raise RuntimeError("could not allocate a unique key lookup")


def key_set_active(*, api_key: ApiKey, active: bool) -> ApiKey:
    api_key.is_active = active
    api_key.save(update_fields=["is_active", "updated_at"])
    return api_key


SETTINGS = (
    "name",
    "expires_at",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "quota_usd",
    "daily_budget_usd",
    "monthly_budget_usd",
    "notification_email",
    "allowed_ips",
)


def key_update(*, api_key: ApiKey, **changes: Any) -> ApiKey:
    """Change a key's settings (any of SETTINGS); the gateway sees them within seconds."""
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise TypeError(f"not a key setting: {', '.join(sorted(unknown))}")
    if "allowed_models" in changes:
        changes["allowed_models"] = sorted(set(changes["allowed_models"] or []))
    if "allowed_ips" in changes:
        changes["allowed_ips"] = networks_parse(changes["allowed_ips"] or [])
    for field, value in changes.items():
        setattr(api_key, field, value)
    api_key.save(update_fields=[*changes, "updated_at"])
    return api_key


@transaction.atomic
def key_rotate(*, api_key: ApiKey, grace: timedelta = timedelta(0)) -> tuple[ApiKey, str]:
    """A new secret for the same key record and settings; returns the key and
    the new secret, which is never stored.

    The old secret keeps working for `grace` (not at all when zero). Only one
    previous secret is kept: one still in an earlier grace period stops now.
    """
    key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    old_lookup, old_hash = key.lookup, key.secret_hash
    keep_old = grace > timedelta(0)
    for _ in range(5):
        raw, lookup = _fresh_secret()
        key.lookup = lookup
        key.secret_hash = key_hash(raw)
        key.display_prefix = _display_prefix(raw)
        key.previous_lookup = old_lookup if keep_old else None
        key.previous_secret_hash = old_hash if keep_old else ""
        key.previous_valid_until = timezone.now() + grace if keep_old else None
        try:
            with transaction.atomic():
                key.save(
                    update_fields=[
                        "lookup",
                        "secret_hash",
                        "display_prefix",
                        "previous_lookup",
                        "previous_secret_hash",
                        "previous_valid_until",
                        "updated_at",
                    ]
                )
        except IntegrityError:  # lookup collision: astronomically rare, try again
            continue
        return key, raw
    raise RuntimeError("could not allocate a unique key lookup")


def key_revoke_previous(*, api_key: ApiKey) -> ApiKey:
    """End a rotation's grace period now: only the current secret works."""
    api_key.previous_lookup = None
    api_key.previous_secret_hash = ""
    api_key.previous_valid_until = None
    api_key.save(
        update_fields=[
            "previous_lookup",
            "previous_secret_hash",
            "previous_valid_until",
            "updated_at",
        ]
    )
    return api_key


def key_delete(*, api_key: ApiKey) -> None:
    """Delete the key; its usage records stay (their key becomes null)."""
    api_key.delete()
