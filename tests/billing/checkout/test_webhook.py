"""Stripe's webhook on the live server, fed by the fake Stripe: only deliveries
Stripe signed are acted on, and a paid checkout is credited exactly once
however its events are delivered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from billing import stripe_api
from billing.models import Balance, Purchase, StripeEvent
from tests.billing.checkout.conftest import balance, entries, purchase
from tests.helpers import wait_for

WEBHOOK = "/billing/stripe/webhook"
CREDIT = Decimal("12.5")


def session_reads(fake, session_id: str) -> int:
    return sum(r["path"] == f"/v1/checkout/sessions/{session_id}" for r in fake.requests)


def test_a_paid_checkout_is_credited_with_the_plans_credit(stripe_live, start, account):
    session_id = start()

    answer = stripe_live.deliver(stripe_live.complete(session_id))

    assert answer.status_code == 200
    assert entries(account) == [("purchase", CREDIT, f"stripe_checkout:{session_id}")]
    assert balance(account) == CREDIT
    bought = purchase(session_id)
    assert bought.status == Purchase.Status.CREDITED
    assert bought.receipt_url.startswith(f"{stripe_live.base_url}/receipts/ch_")
    assert bought.ledger_entry.receipt_url == bought.receipt_url
    expires = bought.ledger_entry.expires_at - timezone.now()
    assert timedelta(days=364) < expires <= timedelta(days=365)


@pytest.mark.parametrize(
    "fault",
    [
        lambda: {"signed": False},
        lambda: {"secret": "whsec_not_the_endpoints_secret"},
        lambda: {"alter": True},
        lambda: {"timestamp": int(time.time()) - 301},
    ],
    ids=["missing", "wrong-secret", "one-byte-altered", "301-seconds-old"],
)
def test_a_delivery_stripe_did_not_sign_is_refused_with_no_side_effect(
    stripe_live, start, account, fault
):
    session_id = start()
    event = stripe_live.complete(session_id)

    answer = stripe_live.deliver(event, **fault())

    assert answer.status_code == 400
    assert entries(account) == []
    assert StripeEvent.objects.count() == 0
    assert purchase(session_id).status == Purchase.Status.OPEN
    assert session_reads(stripe_live, session_id) == 0
    # The event itself, signed, still credits.
    assert stripe_live.deliver(event).status_code == 200
    assert balance(account) == CREDIT


def test_a_signature_within_stripes_tolerance_is_accepted(stripe_live, start, account):
    event = stripe_live.complete(start())

    answer = stripe_live.deliver(event, timestamp=int(time.time()) - 290)

    assert answer.status_code == 200
    assert balance(account) == CREDIT


def test_get_is_405(stripe_live, http):
    answer = http.get(WEBHOOK)

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


def test_an_event_type_purebridge_does_not_handle_is_acknowledged_and_ignored(stripe_live, account):
    event = stripe_live.make_event("customer.created", {"id": "cus_1", "object": "customer"})

    answer = stripe_live.deliver(event)

    assert (answer.status_code, answer.text) == (200, "ignored")
    assert entries(account) == []
    assert StripeEvent.objects.get().processed_at is not None


def test_without_stripe_keys_the_webhook_refuses_loudly(stripe_live, start, settings, caplog):
    event = stripe_live.complete(start())
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = ""

    answer = stripe_live.deliver(event)

    assert answer.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in caplog.text
    assert StripeEvent.objects.count() == 0


def test_the_same_completed_event_delivered_five_times_in_a_row_credits_once(
    stripe_live, start, account
):
    session_id = start()
    event = stripe_live.complete(session_id)

    statuses = [stripe_live.deliver(event).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert balance(account) == CREDIT
    assert len(entries(account)) == 1
    kept = StripeEvent.objects.get(event_id=event["id"])
    assert (kept.deliveries, kept.error) == (5, "")
    # Redeliveries of an event handled without error are skipped.
    assert session_reads(stripe_live, session_id) == 1


def test_the_same_completed_event_delivered_five_times_at_once_credits_once(
    stripe_live, start, account
):
    event = stripe_live.complete(start())
    ready = threading.Barrier(5)

    def deliver(_: int) -> int:
        ready.wait()
        return stripe_live.deliver(event).status_code

    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(deliver, range(5)))

    assert statuses == [200] * 5
    assert balance(account) == CREDIT
    assert len(entries(account)) == 1
    assert StripeEvent.objects.get().deliveries == 5


def test_completed_then_async_payment_succeeded_credits_once(stripe_live, start, account):
    session_id = start()
    completed = stripe_live.complete(session_id, paid=False)
    succeeded = stripe_live.async_succeed(session_id)

    # Delivered late, `completed` finds the session paid and credits it...
    assert stripe_live.deliver(completed).status_code == 200
    assert balance(account) == CREDIT
    # ...and `async_payment_succeeded` finds it credited.
    assert stripe_live.deliver(succeeded).status_code == 200
    assert balance(account) == CREDIT
    assert len(entries(account)) == 1


def test_completed_unpaid_credits_nothing_until_async_payment_succeeded(
    stripe_live, start, account
):
    session_id = start()

    assert stripe_live.deliver(stripe_live.complete(session_id, paid=False)).status_code == 200

    assert entries(account) == []
    assert purchase(session_id).status == Purchase.Status.PROCESSING
    assert stripe_live.deliver(stripe_live.async_succeed(session_id)).status_code == 200
    assert balance(account) == CREDIT
    assert purchase(session_id).status == Purchase.Status.CREDITED


def test_async_payment_failed_never_credits(stripe_live, start, account):
    session_id = start()
    completed = stripe_live.complete(session_id, paid=False)
    failed = stripe_live.async_fail(session_id)

    for event in (completed, failed, completed):
        assert stripe_live.deliver(event).status_code == 200

    assert entries(account) == []
    assert purchase(session_id).status == Purchase.Status.FAILED


def test_an_expired_session_never_credits_even_when_an_event_says_it_was_paid(
    stripe_live, start, account
):
    session_id = start()
    expired = stripe_live.expire(session_id)
    forged = stripe_live.altered(
        expired, kind="checkout.session.completed", status="complete", payment_status="paid"
    )

    assert stripe_live.deliver(expired).status_code == 200
    assert stripe_live.deliver(forged).status_code == 200

    assert entries(account) == []
    assert purchase(session_id).status == Purchase.Status.EXPIRED


@pytest.fixture
def other(transactional_db):
    from accounts.models import User

    return User.objects.create_user("other@example.com", "pw-other-1234").account


@pytest.fixture
def big_plan(transactional_db):
    from billing.models import Plan

    return Plan.objects.create(
        name="big", title="Big", price=Decimal("500"), currency="usd", credit_usd=Decimal("900")
    )


def test_an_event_with_tampered_metadata_cannot_raise_the_credit_or_move_it(
    stripe_live, start, account, other, big_plan
):
    session_id = start()
    genuine = stripe_live.complete(session_id)
    forged = stripe_live.altered(
        genuine,
        client_reference_id=str(other.pk),
        metadata={"purebridge_account": str(other.pk), "purebridge_plan": big_plan.name},
        amount_total=50000,
    )

    assert stripe_live.deliver(forged).status_code == 200
    assert stripe_live.deliver(genuine).status_code == 200

    assert entries(account) == [("purchase", CREDIT, f"stripe_checkout:{session_id}")]
    assert entries(other) == []


def test_a_session_whose_reference_and_metadata_were_changed_credits_its_purchase(
    stripe_live, start, account, other, big_plan
):
    session_id = start()
    stripe_live.update_session(
        session_id,
        client_reference_id=str(other.pk),
        metadata={"purebridge_account": str(other.pk), "purebridge_plan": big_plan.name},
    )

    assert stripe_live.deliver(stripe_live.complete(session_id)).status_code == 200

    assert balance(account) == CREDIT
    assert entries(other) == []


def test_a_session_paid_for_another_amount_is_not_credited_but_kept_for_review(
    stripe_live, start, account, caplog
):
    session_id = start()
    stripe_live.update_session(session_id, amount_total=50)

    assert stripe_live.deliver(stripe_live.complete(session_id)).status_code == 200

    assert entries(account) == []
    assert purchase(session_id).status == Purchase.Status.REVIEW
    assert "not credited" in caplog.text


def test_a_session_purebridge_did_not_make_is_acknowledged_and_left_alone(stripe_live, account):
    foreign = stripe_api.checkout_session_create(
        amount=700,
        currency="usd",
        name="Another shop's T-shirt",
        description="",
        account_id=0,
        plan_name="",
        success_url="https://shop.example/thanks",
        cancel_url="https://shop.example/",
        email="",
        idempotency_key="another-shop-1",
    )

    answer = stripe_live.deliver(stripe_live.complete(foreign.id))

    assert answer.status_code == 200
    assert entries(account) == []
    assert session_reads(stripe_live, foreign.id) == 0


def test_stripe_unreachable_while_crediting_is_a_retry_and_the_retry_credits_once(
    stripe_live, start, account
):
    session_id = start()
    event = stripe_live.complete(session_id)
    stripe_live.outage = True

    assert stripe_live.deliver(event).status_code == 500
    assert entries(account) == []
    assert "fake outage" in StripeEvent.objects.get().error

    stripe_live.outage = False
    assert stripe_live.redeliver(event["id"]).status_code == 200
    assert balance(account) == CREDIT
    kept = StripeEvent.objects.get()
    assert (kept.deliveries, kept.error) == (2, "")
    assert kept.processed_at is not None


def _connect(autocommit: bool) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
        autocommit=autocommit,
    )


def test_the_database_failing_during_delivery_is_a_retry_and_the_retry_credits_once(
    stripe_live, start, account
):
    """The webhook's database connection is killed while it waits to credit
    (another transaction holds the balance row): Stripe is told to retry, and
    the retry credits once."""
    session_id = start()
    event = stripe_live.complete(session_id)
    Balance.objects.create(account=account)
    answers: list = []
    with _connect(autocommit=False) as holder, _connect(autocommit=True) as watcher:
        holder.execute(
            "SELECT 1 FROM billing_balance WHERE account_id = %s FOR UPDATE", [account.pk]
        )
        delivery = threading.Thread(target=lambda: answers.append(stripe_live.deliver(event)))
        delivery.start()
        waiting = wait_for(
            lambda: watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%%billing_balance%%'"
            ).fetchone(),
            timeout=15,
        )
        assert waiting, "the webhook never waited for the balance row"
        watcher.execute("SELECT pg_terminate_backend(%s)", [waiting[0]])
        delivery.join(30)
        holder.rollback()

    assert answers[0].status_code == 500
    assert entries(account) == []
    assert purchase(session_id).status == Purchase.Status.OPEN
    assert StripeEvent.objects.get().processed_at is None

    assert stripe_live.redeliver(event["id"]).status_code == 200
    assert balance(account) == CREDIT
    assert len(entries(account)) == 1
    assert StripeEvent.objects.get().processed_at is not None
