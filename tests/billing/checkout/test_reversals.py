"""Refunds and disputes of purchases, delivered by the fake Stripe to the live
webhook: each takes back its share once, in whatever order the events come."""

from __future__ import annotations

from decimal import Decimal

from billing.models import StripeDispute
from billing.reversals import account_blocked
from tests.billing.checkout.conftest import balance, entries, purchase

CREDIT = Decimal("12.5")


def kinds(account) -> list[tuple[str, Decimal]]:
    return [(kind, amount) for kind, amount, _ in entries(account)]


def test_a_full_refund_takes_the_credit_back(stripe_live, start, account):
    session_id = start()
    stripe_live.deliver(stripe_live.complete(session_id))

    answer = stripe_live.deliver(stripe_live.refund(session_id))

    assert answer.status_code == 200
    assert kinds(account) == [("purchase", CREDIT), ("refund", -CREDIT)]
    assert balance(account) == 0
    [refund_id] = stripe_live.refunds
    assert entries(account)[1][2] == f"refund:{refund_id}"
    assert purchase(session_id).amount_refunded == 1000


def test_partial_refunds_take_back_their_share_once_each(stripe_live, start, account):
    session_id = start()
    stripe_live.deliver(stripe_live.complete(session_id))

    first = stripe_live.refund(session_id, 250)  # a quarter of the $10.00 paid
    assert stripe_live.deliver(first).status_code == 200
    assert stripe_live.deliver(stripe_live.altered(first)).status_code == 200  # Stripe again
    assert kinds(account) == [("purchase", CREDIT), ("refund", Decimal("-3.125"))]

    rest = stripe_live.refund(session_id, 750)
    assert stripe_live.deliver(rest).status_code == 200
    assert stripe_live.redeliver(first["id"]).status_code == 200
    assert kinds(account) == [
        ("purchase", CREDIT),
        ("refund", Decimal("-3.125")),
        ("refund", Decimal("-9.375")),
    ]
    assert balance(account) == 0


def test_refunds_in_odd_thirds_take_back_exactly_the_credit(stripe_live, start, account):
    session_id = start()
    stripe_live.deliver(stripe_live.complete(session_id))

    for amount in (333, 333, 334):
        stripe_live.deliver(stripe_live.refund(session_id, amount))

    assert balance(account) == 0
    assert sum(amount for kind, amount in kinds(account) if kind == "refund") == -CREDIT


def test_a_refund_delivered_before_completed_ends_in_the_right_balance(stripe_live, start, account):
    session_id = start()
    completed = stripe_live.complete(session_id)
    refunded = stripe_live.refund(session_id, 400)

    assert stripe_live.deliver(refunded).status_code == 200
    assert balance(account) == Decimal("7.5")  # credited, then 40% taken back
    assert stripe_live.deliver(completed).status_code == 200

    assert kinds(account) == [("purchase", CREDIT), ("refund", Decimal("-5"))]
    assert balance(account) == Decimal("7.5")


def test_a_dispute_holds_its_share_and_blocks_the_account_until_it_is_won(
    stripe_live, start, account
):
    session_id = start()
    stripe_live.deliver(stripe_live.complete(session_id))
    created = stripe_live.dispute(session_id)
    dispute_id = created["data"]["object"]["id"]

    assert stripe_live.deliver(created).status_code == 200
    assert balance(account) == 0
    assert dispute_id in account_blocked(account.pk)

    assert stripe_live.deliver(stripe_live.close_dispute(dispute_id, won=True)).status_code == 200
    assert account_blocked(account.pk) == ""
    assert balance(account) == CREDIT
    assert entries(account)[1:] == [
        ("dispute", -CREDIT, f"dispute:{dispute_id}"),
        ("dispute_release", CREDIT, f"dispute_release:{dispute_id}"),
    ]


def test_a_lost_dispute_keeps_the_hold_and_unblocks_the_account(stripe_live, start, account):
    session_id = start()
    stripe_live.deliver(stripe_live.complete(session_id))
    created = stripe_live.dispute(session_id)
    stripe_live.deliver(created)

    closed = stripe_live.close_dispute(created["data"]["object"]["id"], won=False)
    assert stripe_live.deliver(closed).status_code == 200

    assert kinds(account) == [("purchase", CREDIT), ("dispute", -CREDIT)]
    assert balance(account) == 0
    assert account_blocked(account.pk) == ""
    assert StripeDispute.objects.get().status == "lost"


def test_a_dispute_delivered_before_completed_ends_in_the_right_balance(
    stripe_live, start, account
):
    session_id = start()
    completed = stripe_live.complete(session_id)
    created = stripe_live.dispute(session_id)

    assert stripe_live.deliver(created).status_code == 200
    assert stripe_live.deliver(completed).status_code == 200

    assert kinds(account) == [("purchase", CREDIT), ("dispute", -CREDIT)]
    assert balance(account) == 0
    assert account_blocked(account.pk) != ""


def test_a_dispute_closed_before_its_creation_arrives_ends_released(stripe_live, start, account):
    session_id = start()
    completed = stripe_live.complete(session_id)
    created = stripe_live.dispute(session_id)
    closed = stripe_live.close_dispute(created["data"]["object"]["id"], won=True)

    for event in (closed, created, completed):
        assert stripe_live.deliver(event).status_code == 200

    assert kinds(account) == [
        ("purchase", CREDIT),
        ("dispute", -CREDIT),
        ("dispute_release", CREDIT),
    ]
    assert account_blocked(account.pk) == ""


def test_a_dispute_after_a_partial_refund_holds_what_is_left(stripe_live, start, account):
    session_id = start()
    stripe_live.deliver(stripe_live.complete(session_id))
    stripe_live.deliver(stripe_live.refund(session_id, 200))

    stripe_live.deliver(stripe_live.dispute(session_id))

    assert kinds(account)[1:] == [("refund", Decimal("-2.5")), ("dispute", Decimal("-10"))]
    assert balance(account) == 0
