"""Bearer key → KeyInfo, from an in-process cache on a warm request.

A miss reads the key from the database once; the entry lives until the key is
changed (invalidation) or PUREBRIDGE_CACHE_TTL passes. A lookup no key has is
refused before that, without a query, by the worker's filter of the lookups
that exist (gateway/lookups.py): a flood of made-up keys, each new, does not
become a flood of queries. A lookup the filter lets through (one of its rare
false positives) and the database does not know is cached as unknown for
NEGATIVE_TTL; creating a key invalidates its lookup at once.

A rotated key answers to two lookups during its grace period: the new secret's
and the previous one's. One KeyInfo is cached under both, and a change to the
key invalidates both (and any lookup the change dropped).
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from gateway.db import database_down, run_db
from gateway.errors import (
    AccountOnHold,
    DatabaseUnavailable,
    InvalidApiKey,
    IpNotAllowed,
    UnknownApiKey,
)
from gateway.lookups import known_lookups
from keys.networks import Network, address_allowed, networks_of
from keys.services import key_hash, key_parse
from usage.budgets import MICROS

NEGATIVE_TTL = 5.0
# Past this many entries, unknown and expired ones are dropped when another
# unknown lookup is cached: the keys in use stay.
CACHE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    account_id: int
    name: str
    lookup: str
    secret_hash: str
    previous_lookup: str | None
    previous_secret_hash: str
    previous_valid_until: float | None  # unix time; the previous secret works until then
    is_active: bool
    expires_at: float | None  # unix time
    allowed_models: frozenset[str] | None  # None: every model
    rpm_limit: int | None
    tpm_limit: int | None
    quota_usd: Decimal | None
    daily_budget_usd: Decimal | None
    monthly_budget_usd: Decimal | None
    timezone: str = "UTC"  # the account's: budget days and months are local
    # What the account was credited (micros, rounded down), the limit its
    # usage is held to; None: not held to a balance (PUREBRIDGE_BILLING_MODE).
    credited_micros: int | None = None
    blocked_reason: str = ""  # the account is on hold (a disputed payment)
    display_prefix: str = ""  # what the console shows of the key (GET /v1/key)
    # Parsed once per cache entry: a check is then a few microseconds.
    allowed_networks: tuple[Network, ...] | None = None  # None: from anywhere


_cache: dict[str, tuple[KeyInfo | None, float]] = {}


def _load(lookup: str) -> KeyInfo | None:
    from keys.models import ApiKey

    # Two indexed reads on a miss only; a current lookup wins over a previous one.
    keys = ApiKey.objects.select_related("account", "account__balance")
    k = keys.filter(lookup=lookup).first()
    if k is None:
        k = keys.filter(previous_lookup=lookup).first()
    if k is None:
        return None
    balance = getattr(k.account, "balance", None)  # none: no entry posted yet
    return KeyInfo(
        id=k.id,
        account_id=k.account_id,
        name=k.name,
        lookup=k.lookup,
        secret_hash=k.secret_hash,
        previous_lookup=k.previous_lookup,
        previous_secret_hash=k.previous_secret_hash,
        previous_valid_until=(
            k.previous_valid_until.timestamp() if k.previous_valid_until else None
        ),
        is_active=k.is_active,
        expires_at=k.expires_at.timestamp() if k.expires_at else None,
        allowed_models=frozenset(k.allowed_models) if k.allowed_models else None,
        rpm_limit=k.rpm_limit,
        tpm_limit=k.tpm_limit,
        quota_usd=k.quota_usd,
        daily_budget_usd=k.daily_budget_usd,
        monthly_budget_usd=k.monthly_budget_usd,
        timezone=k.account.timezone,
        credited_micros=_credited_micros(balance),
        blocked_reason=balance.blocked_reason if balance is not None else "",
        display_prefix=k.display_prefix,
        allowed_networks=networks_of(k.allowed_ips),
    )


def _credited_micros(balance) -> int | None:
    """The limit the account's usage is held to, or None when it is not
    metered: in "unmetered" mode, an account never credited."""
    prepaid = settings.PUREBRIDGE_BILLING_MODE == "prepaid"
    if balance is None:
        return 0 if prepaid else None
    if not prepaid and not balance.ever_credited:
        return None
    return math.floor(balance.credited_usd * MICROS)


async def _key_info(lookup: str) -> KeyInfo | None:
    now = time.monotonic()
    entry = _cache.get(lookup)
    if entry is not None and (entry[1] > now or (entry[0] is not None and database_down())):
        return entry[0]
    if await known_lookups.refuses(lookup):
        return None
    try:
        info = await run_db(_load, lookup)
    except DatabaseUnavailable:
        if entry is None or entry[0] is None:
            raise
        return entry[0]  # as last read, until the database answers again
    ttl = settings.PUREBRIDGE_CACHE_TTL if info is not None else NEGATIVE_TTL
    if info is None and len(_cache) >= CACHE_LIMIT:
        for stale in [k for k, (known, until) in _cache.items() if known is None or until <= now]:
            del _cache[stale]
    _cache[lookup] = (info, now + ttl)
    if info is not None:
        # The same entry answers the key's other lookup without another query.
        for other in (info.lookup, info.previous_lookup):
            if other and other != lookup:
                _cache[other] = (info, now + ttl)
    return info


def _expected_hash(info: KeyInfo, lookup: str) -> str | None:
    """The hash a secret with this lookup must match, or None if none may.

    The lookup is not secret, so branching on it leaks nothing; the secret
    itself is only ever compared with hmac.compare_digest.
    """
    if lookup == info.lookup:
        return info.secret_hash
    if (
        lookup == info.previous_lookup
        and info.previous_valid_until is not None
        and info.previous_valid_until > time.time()
    ):
        return info.previous_secret_hash
    return None


def invalidate_key(lookup: str) -> None:
    """`lookup`'s key changed: it may have been created (or rotated to it)."""
    _cache.pop(lookup, None)
    known_lookups.add(lookup)


def invalidate_account(account_id: int) -> None:
    """The account's balance changed (a credit, a hold): its keys are read
    again on their next request, or served as last read while the database
    cannot be read."""
    for lookup, (info, _) in list(_cache.items()):
        if info is not None and info.account_id == account_id:
            _cache[lookup] = (info, 0.0)


def invalidate_all_keys() -> None:
    # Expired, not forgotten: while the database cannot be read, a key is
    # served as it was last read (invalidate_key drops one that changed).
    known = {lookup: (info, 0.0) for lookup, (info, _) in _cache.items() if info is not None}
    _cache.clear()
    _cache.update(known)


async def authenticate(
    authorization: str | None, client: str, *, on_hold_ok: bool = False
) -> KeyInfo:
    """The key of `authorization` (the header's value) if it may be used by
    this request's `client` address (Request.client_address). `on_hold_ok`: a
    key of an account on hold is answered too (GET /v1/key says so), where any
    other route refuses it."""
    if not authorization:
        raise UnknownApiKey(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <your_key>'."
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnknownApiKey("Malformed Authorization header: expected 'Bearer <your_key>'.")
    parsed = key_parse(token)
    if parsed is None:
        raise UnknownApiKey("Incorrect API key provided.")
    info = await _key_info(parsed.lookup)
    if info is None:
        raise UnknownApiKey("Incorrect API key provided.")
    expected = _expected_hash(info, parsed.lookup)
    if expected is None or not hmac.compare_digest(key_hash(token), expected):
        raise InvalidApiKey("Incorrect API key provided.")
    # Before any other state of the key: from elsewhere, say nothing more of it.
    if info.allowed_networks is not None and not address_allowed(client, info.allowed_networks):
        raise IpNotAllowed(
            f"This API key may not be used from {client or 'this address'}: "
            "its IP allowlist does not include it.",
            key=info,
        )
    if not info.is_active:
        raise InvalidApiKey("This API key has been disabled.")
    if info.expires_at is not None and info.expires_at <= time.time():
        raise InvalidApiKey("This API key has expired.")
    if info.blocked_reason and not on_hold_ok:
        raise AccountOnHold(
            f"This account is on hold: {info.blocked_reason}. "
            f"See {settings.PUREBRIDGE_CONSOLE_URL}/billing/ or contact support.",
            key=info,
        )
    return info
