from __future__ import annotations

import logging

from celery import shared_task

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
def fulfil_lost_checkouts() -> int:
    """Credit purchases paid on Stripe whose webhook never came
    (billing.checkout.checkout_sweep); returns how many."""
    from billing.checkout import checkout_sweep

    return checkout_sweep()
