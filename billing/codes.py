"""Redemption codes: generating a batch for a plan, and redeeming a code
exactly once however many requests race for it.

A code reads `PB-XXXX-XXXX-XXXX-XXXX`: 16 characters drawn by `secrets` from
Crockford's base32 (digits and capitals without I, L, O and U, which pass for
1, 1, 0 and V), 80 bits. Typed codes are normalised: any case, spaces and
dashes, with or without `PB-`, and O read as 0, I and L as 1, as Crockford
decodes them. Only the first group (the lookup, 20 bits) and an HMAC-SHA-256
of the whole code keyed with PUREBRIDGE_KEY_HASH_SECRET are stored.

"Redeem by" is the code's deadline; how long the credit lasts once redeemed
is the plan's `credit_valid_days` (the ledger entry's expires_at).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Account
from billing.codes_models import CodeBatch, Redemption, RedemptionCode
from billing.codes_throttle import redeem_attempt_allowed, redeem_attempt_succeeded
from billing.models import LedgerEntry, Plan
from billing.services import ledger_post

log = logging.getLogger(__name__)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "PB"
GROUP_LENGTH = 4
CODE_LENGTH = 16  # characters after the prefix
LOOKUP_LENGTH = GROUP_LENGTH
ENTROPY_BITS = CODE_LENGTH * math.log2(len(ALPHABET))
MAX_BATCH = 10_000

INVALID_MESSAGE = "This code is not valid."
THROTTLED_MESSAGE = "Too many attempts; try again in a minute."

_LETTERS = frozenset(ALPHABET)
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Spaces of any kind, and the dashes people paste: hyphen-minus, the Unicode
# hyphens and dashes, the minus sign.
_SEPARATORS = re.compile(r"[\s\-_\u2010-\u2015\u2212]+")


def code_normalise(raw: str) -> str | None:
    """The 16 characters of a code as typed or pasted, or None when it
    cannot be one."""
    if len(raw) > 64:
        return None
    text = _SEPARATORS.sub("", raw).upper().translate(_READ_AS)
    if len(text) == len(PREFIX) + CODE_LENGTH and text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    if len(text) != CODE_LENGTH or not _LETTERS.issuperset(text):
        return None
    return text


def code_format(body: str) -> str:
    """PB-XXXX-XXXX-XXXX-XXXX for a normalised code."""
    groups = [body[i : i + GROUP_LENGTH] for i in range(0, len(body), GROUP_LENGTH)]
    return "-".join([PREFIX, *groups])


def code_hash(body: str) -> str:
    """The keyed hash a normalised code is stored and found by."""
    secret = settings.PUREBRIDGE_KEY_HASH_SECRET.encode()
    return hmac.new(secret, f"redemption-code:{body}".encode(), hashlib.sha256).hexdigest()


def _code_generate() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def code_batch_create(
    *,
    plan: Plan,
    count: int,
    uses: int = 1,
    redeem_by: datetime | None = None,
    note: str = "",
    created_by=None,
) -> tuple[CodeBatch, list[str]]:
    """Generate `count` codes for `plan`, each good for `uses` accounts until
    `redeem_by`. Returns the batch and the codes (PB-…), which are never
    stored: show or write them now."""
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"a batch has 1 to {MAX_BATCH} codes, not {count}")
    if uses < 1:
        raise ValueError(f"a code has at least one use, not {uses}")
    if redeem_by is not None and redeem_by <= timezone.now():
        raise ValueError("the redeem-by date has passed")
    bodies: dict[str, None] = {}  # a dict keeps the order they were drawn in
    while len(bodies) < count:
        bodies[_code_generate()] = None
    with transaction.atomic():
        batch = CodeBatch.objects.create(
            plan=plan,
            count=count,
            uses_per_code=uses,
            redeem_by=redeem_by,
            note=note[:300],
            created_by=created_by,
        )
        # Two equal codes in 80 bits will not happen; if they did, the unique
        # hash would refuse the batch and the operator would run it again.
        RedemptionCode.objects.bulk_create(
            [
                RedemptionCode(
                    batch=batch,
                    lookup=body[:LOOKUP_LENGTH],
                    code_hash=code_hash(body),
                    uses_left=uses,
                    redeem_by=redeem_by,
                )
                for body in bodies
            ],
            batch_size=1000,
        )
    log.info("code batch %s: %s codes for plan %s made", batch.pk, count, plan.name)
    return batch, [code_format(body) for body in bodies]


def codes_csv(batch: CodeBatch, codes: Iterable[str]) -> str:
    """The codes of a new batch as CSV, one row a code."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "plan", "uses", "redeem_by", "batch"])
    redeem_by = batch.redeem_by.isoformat() if batch.redeem_by else ""
    for code in codes:
        writer.writerow([code, batch.plan.name, batch.uses_per_code, redeem_by, batch.pk])
    return out.getvalue()


class Outcome(StrEnum):
    REDEEMED = "redeemed"
    INVALID = "invalid"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class RedeemResult:
    """What became of one attempt. `message` is what the user reads: every
    refusal of a code reads the same. `reason` is for the operator (logged)
    and tests, never for the user."""

    outcome: Outcome
    message: str
    reason: str = ""
    entry: LedgerEntry | None = None
    redemption: Redemption | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.REDEEMED


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def code_redeem(*, account: Account, code: str, ip: str) -> RedeemResult:
    """Redeem `code` (as typed) for `account`: claim one of its uses and credit
    the plan's credit, together or not at all.

    Throttled per account and per client IP before the code is looked at.
    One account redeems a code once; a code with several uses serves that
    many accounts."""
    body = code_normalise(code)
    shown = f"PB-{body[:LOOKUP_LENGTH]}-…" if body else "(malformed)"
    if not redeem_attempt_allowed(account_id=account.pk, ip=ip):
        log.warning("code redemption throttled: account %s, ip %s, code %s", account.pk, ip, shown)
        return RedeemResult(Outcome.THROTTLED, THROTTLED_MESSAGE, reason="throttled")
    try:
        if body is None:
            raise _Refused("malformed")
        found = _code_find(body)
        if found is None:
            raise _Refused("unknown")
        result = _claim_and_credit(found, account, ip)
    except _Refused as refused:
        log.info(
            "code redemption refused (%s): account %s, ip %s, code %s",
            refused.reason,
            account.pk,
            ip,
            shown,
        )
        return RedeemResult(Outcome.INVALID, INVALID_MESSAGE, reason=refused.reason)
    redeem_attempt_succeeded(account_id=account.pk, ip=ip)
    log.info("code %s redeemed by account %s, ip %s", shown, account.pk, ip)
    return result


def _code_find(body: str) -> RedemptionCode | None:
    digest = code_hash(body)
    candidates = RedemptionCode.objects.filter(lookup=body[:LOOKUP_LENGTH])
    for candidate in candidates.select_related("batch__plan"):
        if hmac.compare_digest(candidate.code_hash, digest):
            return candidate
    return None


@transaction.atomic
def _claim_and_credit(code: RedemptionCode, account: Account, ip: str) -> RedeemResult:
    """One use claimed by a conditional update (it waits on the row while
    another claim of the same code is open, then sees what that one left),
    the credit posted and the redemption written, in one transaction: a
    refusal raised here rolls the claim back."""
    now = timezone.now()
    claimed = (
        RedemptionCode.objects.filter(pk=code.pk, uses_left__gt=0)
        .filter(Q(redeem_by__isnull=True) | Q(redeem_by__gt=now))
        .update(uses_left=F("uses_left") - 1)
    )
    if not claimed:
        raise _Refused(_why_not(code, account, now))
    plan = code.batch.plan
    valid = plan.credit_valid_days
    entry = ledger_post(
        account_id=account.pk,
        kind=LedgerEntry.Kind.REDEMPTION,
        amount=plan.credit_usd,
        source=f"code:{code.pk}:{account.pk}",
        reference=f"{plan.title} · code PB-{code.lookup}-…",
        expires_at=now + timedelta(days=valid) if valid else None,
    )
    if entry is None:  # this account redeemed it before: hand the use back
        raise _Refused("already redeemed by this account")
    redemption = Redemption.objects.create(
        code=code, account=account, ledger_entry=entry, ip=ip[:45]
    )
    return RedeemResult(Outcome.REDEEMED, "Code redeemed.", entry=entry, redemption=redemption)


def _why_not(code: RedemptionCode, account: Account, now: datetime) -> str:
    """The operator's reason a claim found nothing to claim."""
    if Redemption.objects.filter(code=code, account=account).exists():
        return "already redeemed by this account"
    current = RedemptionCode.objects.get(pk=code.pk)
    if current.redeem_by is not None and current.redeem_by <= now:
        return "expired"
    return "used up"
