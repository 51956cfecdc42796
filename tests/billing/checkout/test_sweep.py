"""The beat task that credits purchases paid on Stripe whose webhook was lost."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from billing.models import Purchase
from billing.tasks import fulfil_lost_checkouts
from tests.billing.checkout.conftest import balance, purchase


def age(session_id: str, minutes: int) -> None:
    Purchase.objects.filter(session_id=session_id).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


def reads(fake, session_id: str) -> int:
    return sum(r["path"] == f"/v1/checkout/sessions/{session_id}" for r in fake.requests)


def test_the_beat_task_credits_a_paid_session_whose_webhook_was_lost(fake_stripe, start, account):
    session_id = start()
    fake_stripe.complete(session_id)  # never delivered
    age(session_id, 10)

    assert fulfil_lost_checkouts() == 1

    assert balance(account) == Decimal("12.5")
    assert fulfil_lost_checkouts() == 0
    assert reads(fake_stripe, session_id) == 1  # a credited purchase is not asked about again


def test_a_session_younger_than_five_minutes_is_left_to_its_webhook(fake_stripe, start, account):
    session_id = start()
    fake_stripe.complete(session_id)

    assert fulfil_lost_checkouts() == 0
    assert reads(fake_stripe, session_id) == 0


def test_the_sweep_settles_expired_and_failed_sessions_without_credit(fake_stripe, start, account):
    expired, failed, still_open = start(), start(), start()
    fake_stripe.expire(expired)
    fake_stripe.complete(failed, paid=False)
    fake_stripe.async_fail(failed)
    for session_id in (expired, failed, still_open):
        age(session_id, 10)

    assert fulfil_lost_checkouts() == 0

    assert purchase(expired).status == Purchase.Status.EXPIRED
    assert purchase(failed).status == Purchase.Status.FAILED
    assert purchase(still_open).status == Purchase.Status.OPEN
    assert balance(account) == 0


def test_a_stripe_outage_leaves_the_sessions_for_the_next_run(fake_stripe, start, account):
    session_id = start()
    fake_stripe.complete(session_id)
    age(session_id, 10)
    fake_stripe.outage = True

    assert fulfil_lost_checkouts() == 0

    fake_stripe.outage = False
    assert fulfil_lost_checkouts() == 1


def test_the_sweep_is_in_the_beat_schedule():
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "billing.tasks.fulfil_lost_checkouts"
    ]
    assert entry["schedule"] <= 600
