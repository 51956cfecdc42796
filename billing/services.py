"""Posting to the ledger, the one way an account's balance ever changes.

Every credit and debit path calls `ledger_post`: the entry and the balance
move in one transaction, and "exactly once" is the database's unique
constraint on the entry's source, never a check before the write.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, OuterRef, Q, Sum, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from accounts.models import Account
from billing.models import Balance, LedgerEntry

log = logging.getLogger(__name__)
Kind = LedgerEntry.Kind


def ledger_post(
    *,
    account_id: int,
    kind: str,
    amount: Decimal,
    source: str,
    reference: str = "",
    receipt_url: str = "",
    reason: str = "",
    created_by=None,
    expires_at: datetime | None = None,
) -> LedgerEntry | None:
    """Post one signed entry and move the balance with it; None when `source`
    has posted already (nothing changes)."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"a ledger amount is a finite Decimal, not {amount!r}")
    with transaction.atomic():
        balance = _locked_balance(account_id)
        after = balance.amount_usd + amount
        try:
            with transaction.atomic():
                entry = LedgerEntry.objects.create(
                    account_id=account_id,
                    kind=kind,
                    amount_usd=amount,
                    balance_after_usd=after,
                    source=source,
                    reference=reference[:200],
                    receipt_url=receipt_url,
                    reason=reason[:500],
                    created_by=created_by,
                    expires_at=expires_at,
                )
        except IntegrityError:
            if LedgerEntry.objects.filter(source=source).exists():
                return None  # posted before: once is all
            raise
        balance.amount_usd = after
        # A usage debit saves only its side: a credit's save is what tells the
        # gateway's workers the limit moved (gateway/invalidation.py).
        if kind == Kind.USAGE:
            balance.used_usd -= amount
            balance.save(update_fields=["amount_usd", "used_usd", "updated_at"])
        else:
            balance.credited_usd += amount
            balance.ever_credited = True
            balance.save(
                update_fields=["amount_usd", "credited_usd", "ever_credited", "updated_at"]
            )
    return entry


def _locked_balance(account_id: int) -> Balance:
    """The account's balance row, locked for this transaction (made at its
    first entry)."""
    try:
        return Balance.objects.select_for_update().get(account_id=account_id)
    except Balance.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            Balance.objects.create(account_id=account_id)
    except IntegrityError:
        pass  # made meanwhile by a concurrent first entry
    return Balance.objects.select_for_update().get(account_id=account_id)


class Written(Protocol):
    """What billing reads of a usage record the writer wrote (a UsageEntry)."""

    request_id: str
    account_id: int | None
    cost_usd: Decimal


def usage_debit(records: Iterable[Written]) -> None:
    """Debit each account the cost of its records of one usage-writer batch,
    one entry per account (inside the writer's transaction: the records and
    their debit commit together).

    A record is in exactly one committed batch, so the smallest request id of
    an account's records in the batch names the debit uniquely: a batch
    retried after a lost acknowledgement posts nothing twice."""
    costs: dict[int, Decimal] = defaultdict(Decimal)
    first: dict[int, str] = {}
    for record in records:
        if record.account_id is None or not record.cost_usd:
            continue
        costs[record.account_id] += record.cost_usd
        if record.account_id not in first or record.request_id < first[record.account_id]:
            first[record.account_id] = record.request_id
    for account_id in sorted(costs):  # a fixed order: two writers never deadlock
        ledger_post(
            account_id=account_id,
            kind=Kind.USAGE,
            amount=-costs[account_id],
            source=f"usage:{account_id}:{first[account_id]}",
        )


def credits_expire(*, now: datetime | None = None) -> int:
    """Post an expiry for each credit (a plan bought or redeemed with a
    validity) past its `expires_at`: what is left of it. Returns how many
    credits were expired (an entry each, $0 when all of it was used).

    Spending uses the credit that expires first, so a credit expiring has
    been spent before every credit still valid: what is left of it is the
    balance less those (all of their amounts, refunds of them not netted, so
    an error only ever leaves the customer more). Under the balance's lock,
    once per credit (`expiry:<entry id>`)."""
    now = now or timezone.now()
    done = LedgerEntry.objects.filter(
        source=Concat(Value("expiry:"), Cast(OuterRef("pk"), CharField()))
    )
    due = (
        LedgerEntry.objects.filter(expires_at__lte=now, amount_usd__gt=0)
        .exclude(kind__in=[Kind.USAGE, Kind.EXPIRY])
        .exclude(Exists(done))
        .order_by("expires_at", "id")
    )
    expired = 0
    for credit in due:
        with transaction.atomic():
            balance = _locked_balance(credit.account_id)
            valid = (
                LedgerEntry.objects.filter(account_id=credit.account_id, amount_usd__gt=0)
                .exclude(kind__in=[Kind.USAGE, Kind.EXPIRY])
                .exclude(pk=credit.pk)
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=credit.expires_at))
                .aggregate(total=Sum("amount_usd"))["total"]
            ) or Decimal(0)
            left = min(max(balance.amount_usd - valid, Decimal(0)), credit.amount_usd)
            posted = ledger_post(
                account_id=credit.account_id,
                kind=Kind.EXPIRY,
                amount=-left if left else Decimal(0),
                source=f"expiry:{credit.pk}",
                reference=credit.reference,
                reason=f"Unused credit from {credit.created_at:%Y-%m-%d} expired",
            )
            expired += posted is not None
    return expired


@dataclass(frozen=True, slots=True)
class Mismatch:
    account_id: int
    what: str
    expected: Decimal
    found: Decimal


def reconcile(account_ids: Iterable[int] | None = None) -> list[Mismatch]:
    """Check the books: each balance equals the sum of its entries (and its
    two sides their kinds), and each account's usage debits equal the cost
    of its usage records. Returns every difference (none: the books hold)."""
    from usage.spend import account_costs

    entries = LedgerEntry.objects.all()
    balances = Balance.objects.all()
    wanted = list(account_ids) if account_ids is not None else None
    if wanted is not None:
        entries = entries.filter(account_id__in=wanted)
        balances = balances.filter(account_id__in=wanted)
    total = _sums(entries)
    used = _sums(entries.filter(kind=Kind.USAGE))
    # The records, and the hourly rollups where retention purged them.
    recorded = account_costs(wanted)
    mismatches = []
    seen = set()
    for balance in balances:
        account = balance.account_id
        seen.add(account)
        checks = [
            ("balance", total.get(account, Decimal(0)), balance.amount_usd),
            ("used", -used.get(account, Decimal(0)), balance.used_usd),
            (
                "credited",
                total.get(account, Decimal(0)) - used.get(account, Decimal(0)),
                balance.credited_usd,
            ),
            ("usage debits", recorded.get(account, Decimal(0)), -used.get(account, Decimal(0))),
        ]
        mismatches += [Mismatch(account, w, e, f) for w, e, f in checks if e != f]
    for account in (set(total) | set(recorded)) - seen:
        # Entries or records with no balance row (none posted yet, or its
        # snapshot is missing): the sums must then be nothing.
        if total.get(account, Decimal(0)):
            mismatches.append(Mismatch(account, "balance", total[account], Decimal(0)))
        if recorded.get(account, Decimal(0)) != -used.get(account, Decimal(0)):
            mismatches.append(
                Mismatch(
                    account,
                    "usage debits",
                    recorded.get(account, Decimal(0)),
                    -used.get(account, Decimal(0)),
                )
            )
    return mismatches


def _sums(queryset) -> dict[int, Decimal]:
    rows = queryset.values("account_id").annotate(total=Sum("amount_usd"))
    return {row["account_id"]: row["total"] or Decimal(0) for row in rows}


def low_balance_alert_set(*, account: Account, amount: Decimal | None) -> None:
    """Set (or, with None, turn off) the account's low-balance alert. The
    balance row is made if the account has none yet: its figure stays 0, as
    its (no) entries say. An update, not a save: a concurrent ledger_post
    moves the balance's other columns meanwhile."""
    Balance.objects.get_or_create(account=account)
    Balance.objects.filter(account=account).update(low_balance_alert_usd=amount)
