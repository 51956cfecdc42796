"""The low-balance alert: an email each time the balance falls below the
threshold the account set on the billing page.

The crossing is the ledger entry that took the balance from at or above the
threshold to below it; the latest such entry is the one the balance is below
since. Its LowBalanceAlert row is the claim: whoever inserts it sends the
email, so a crossing is mailed once however many sweeps find it, and a top-up
and a new crossing is a new entry, so a new email.

Found by a beat sweep each minute (billing.tasks.sweep_low_balance_alerts)
rather than by the usage writer: usage debits post inside the writer's own
transaction, which must neither wait for the broker nor queue a task per
batch; the sweep reads only balances below their threshold, so a crossing is
mailed within a minute or two at the cost of one small query a minute.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F
from django.template.loader import render_to_string

from accounts.models import Account
from accounts.selectors import account_alert_email
from billing.models import Balance, LedgerEntry, LowBalanceAlert
from purebridge.mail import send_once
from purebridge.text import one_line

log = logging.getLogger(__name__)


def low_balance_alerts_due() -> list[int]:
    """Accounts below their threshold whose latest crossing is not mailed yet."""
    below = Balance.objects.filter(
        low_balance_alert_usd__isnull=False, amount_usd__lt=F("low_balance_alert_usd")
    ).values_list("account_id", "low_balance_alert_usd")
    due = []
    for account_id, threshold in below:
        if threshold is None:  # excluded by the query; for the type checker
            continue
        entry = crossing(account_id, threshold)
        if entry is not None and not _claimed(account_id, threshold, entry):
            due.append(account_id)
    return due


def crossing(account_id: int, threshold: Decimal) -> LedgerEntry | None:
    """The latest entry that took the balance below `threshold` (None if it
    never fell below it: it started there, or was never at or above it)."""
    return (
        LedgerEntry.objects.filter(account_id=account_id, balance_after_usd__lt=threshold)
        .alias(before=F("balance_after_usd") - F("amount_usd"))
        .filter(before__gte=threshold)
        .order_by("-created_at", "-id")
        .first()
    )


def _claimed(account_id: int, threshold: Decimal, entry: LedgerEntry) -> bool:
    return LowBalanceAlert.objects.filter(
        account_id=account_id, threshold_usd=threshold, entry=entry
    ).exists()


def low_balance_alert_send(*, account_id: int) -> bool:
    """Mail the account's latest unmailed crossing, if it is still below its
    threshold, once (purebridge.mail.send_once: a failed send leaves the
    crossing to the next sweep)."""
    balance = Balance.objects.select_related("account").filter(account_id=account_id).first()
    if balance is None or balance.low_balance_alert_usd is None:
        return False
    threshold = balance.low_balance_alert_usd
    if balance.amount_usd >= threshold:
        return False
    entry = crossing(account_id, threshold)
    if entry is None:
        return False
    recipient = account_alert_email(balance.account)

    def claim() -> LowBalanceAlert:
        return LowBalanceAlert.objects.create(
            account_id=account_id, threshold_usd=threshold, entry=entry, recipient=recipient
        )

    def email(alert: LowBalanceAlert) -> EmailMultiAlternatives | None:
        if not recipient:
            return None  # claimed: nobody to tell, and no retry would find anybody
        return low_balance_email(
            balance.account, threshold=threshold, balance=balance.amount_usd, to=recipient
        )

    return send_once(claim, email)


def low_balance_email(
    account: Account, *, threshold: Decimal, balance: Decimal, to: str
) -> EmailMultiAlternatives:
    context = {
        "account_name": one_line(account.name),
        "threshold": threshold,
        "balance": balance,
        "owed": balance < 0,
        "billing_url": f"{settings.PUREBRIDGE_CONSOLE_URL}/billing/",
    }
    subject = one_line(render_to_string("billing/email/low-balance-alert-subject.txt", context))
    message = EmailMultiAlternatives(
        subject, render_to_string("billing/email/low-balance-alert.txt", context), None, [to]
    )
    message.attach_alternative(
        render_to_string("billing/email/low-balance-alert.html", context), "text/html"
    )
    return message
