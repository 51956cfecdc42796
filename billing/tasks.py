from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def reconcile_books() -> int:
    """Check the books (billing.services.reconcile) and log every difference
    as an error, for the operator's alerting; returns how many."""
    from billing.services import reconcile

    mismatches = reconcile()
    for m in mismatches:
        log.error(
            "books out of balance: account %s %s should be %s, is %s",
            m.account_id,
            m.what,
            m.expected,
            m.found,
        )
    return len(mismatches)


@shared_task(ignore_result=True)
def expire_credits() -> int:
    """Take back what is left of credits past their validity
    (billing.services.credits_expire); returns how many expired."""
    from billing.services import credits_expire

    return credits_expire()


@shared_task(ignore_result=True)
def fulfil_lost_checkouts() -> int:
    """Credit purchases paid on Stripe whose webhook never came
    (billing.checkout.checkout_sweep); returns how many."""
    from billing.checkout import checkout_sweep

    return checkout_sweep()


@shared_task(
    ignore_result=True,
    # The email server or the database unreachable (SMTP errors are OSErrors).
    autoretry_for=(OSError, OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,  # below the broker's visibility timeout
    max_retries=10,
)
def send_low_balance_alert(account_id: int) -> bool:
    """Mail the account's latest crossing of its low-balance threshold, once."""
    from billing.alerts import low_balance_alert_send

    return low_balance_alert_send(account_id=account_id)


@shared_task(ignore_result=True)
def sweep_low_balance_alerts() -> int:
    """Queue the alert of every account below its low-balance threshold whose
    crossing is not mailed yet (billing.alerts); returns how many."""
    from billing.alerts import low_balance_alerts_due

    due = low_balance_alerts_due()
    for account_id in due:
        send_low_balance_alert.delay(account_id)
    return len(due)
