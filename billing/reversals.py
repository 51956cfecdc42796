"""Money that goes back: refunds and disputes of purchases made with Stripe
Checkout.

A refund takes back the refunded share of the purchase's credit, one entry
per Stripe refund (`refund:<id>`), so a repeated event posts nothing and a
later partial refund posts only its own share. A dispute holds its share at
once (`dispute:<id>`) and blocks the account (Balance.blocked_reason, read by
`account_blocked`) until it is closed; won, the hold is released
(`dispute_release:<id>`); lost, it stays.

Each handler reads what Stripe has now (the refunds of the payment, the
dispute), not the event that woke it, so events may come in any order or
more than once. A refund or dispute that arrives before the purchase was
credited first credits it (checkout_fulfil: Stripe says it is paid, or there
would be nothing to refund), then takes back: the balance ends the same
whichever event came first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext

from django.db import transaction

from billing import stripe_api
from billing.checkout import checkout_fulfil
from billing.models import Balance, LedgerEntry, Purchase, StripeDispute
from billing.services import ledger_post

log = logging.getLogger(__name__)
Kind = LedgerEntry.Kind
_PRECISION = Decimal("1e-12")  # the ledger's
# Refunds that return nothing to the customer.
_UNDONE = frozenset({"failed", "canceled"})
# Closed disputes whose hold goes back; "lost" keeps it; any other status is open.
RELEASED = frozenset({"won", "warning_closed", "prevented"})
CLOSED = RELEASED | {"lost"}


def account_blocked(account_id: int) -> str:
    """Why the account's API keys must be refused ("" when they need not be):
    a payment of it is disputed. For the gateway to read with the account."""
    reason = (
        Balance.objects.filter(account_id=account_id)
        .values_list("blocked_reason", flat=True)
        .first()
    )
    return reason or ""


def purchase_of_payment(payment_intent_id: str) -> Purchase | None:
    """The purchase a Stripe payment paid for, if any (the Checkout Session
    that made the payment, asked of Stripe when the purchase does not know
    its payment yet)."""
    if not payment_intent_id:
        return None
    purchase = Purchase.objects.filter(payment_intent_id=payment_intent_id).first()
    if purchase is not None:
        return purchase
    session_id = stripe_api.checkout_session_of_payment(payment_intent_id)
    if session_id is None:
        return None
    return Purchase.objects.filter(session_id=session_id).first()


def charge_refunds_apply(*, payment_intent_id: str) -> int:
    """Take back the refunded share of a purchase's credit for each refund of
    its payment not taken back yet. Returns the entries posted."""
    purchase = purchase_of_payment(payment_intent_id)
    if purchase is None:
        log.info("refund of payment %s, not a PureBridge purchase", payment_intent_id)
        return 0
    if _credited(purchase) is None:
        log.warning("refund of %s, never credited: nothing to take back", purchase.session_id)
        return 0
    refunds = [r for r in stripe_api.refunds_of(payment_intent_id) if r.status not in _UNDONE]
    posted = 0
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().select_related("plan").get(pk=purchase.pk)
        sources = {f"refund:{r.id}": r.id for r in refunds}
        taken = {
            sources[source]: -amount
            for source, amount in LedgerEntry.objects.filter(source__in=sources).values_list(
                "source", "amount_usd"
            )
        }
        for refund_id, share in refund_shares(
            purchase.credit_usd, purchase.amount_total, refunds, taken
        ):
            entry = ledger_post(
                account_id=purchase.account_id,
                kind=Kind.REFUND,
                amount=-share,
                source=f"refund:{refund_id}",
                reference=f"Refund: {purchase.plan.title or purchase.plan.name}",
                receipt_url=purchase.receipt_url,
            )
            posted += entry is not None
        purchase.amount_refunded = min(sum(r.amount for r in refunds), purchase.amount_total)
        purchase.save(update_fields=["amount_refunded", "updated_at"])
    return posted


def refund_shares(
    credit: Decimal,
    paid: int,
    refunds: Sequence[stripe_api.Refund],
    taken: Mapping[str, Decimal],
) -> list[tuple[str, Decimal]]:
    """What to take back for each refund not taken back yet (`taken`: what
    each earlier one took). All refunds so far take back credit × refunded /
    paid in all; the new ones share what the earlier ones left of that in
    proportion to their amounts, the last taking the remainder, so the total
    is exact whatever order the refunds were seen in, and never more than the
    credit."""
    new = [r for r in refunds if r.id not in taken]
    if not new:
        return []
    refunded = min(sum(r.amount for r in refunds), paid)
    due = _share(credit, refunded, paid) - sum(taken.values(), Decimal(0))
    shares = []
    for refund in new[:-1]:
        part = max(min(_share(credit, refund.amount, paid), due), Decimal(0))
        shares.append((refund.id, part))
        due -= part
    shares.append((new[-1].id, max(due, Decimal(0))))
    return shares


def dispute_apply(dispute_id: str) -> StripeDispute | None:
    """Bring a dispute up to date: hold its share of the purchase's credit,
    release it if the dispute was won, and block the account while any of
    its disputes is open. None when the disputed payment is not a purchase."""
    dispute = stripe_api.dispute_retrieve(dispute_id)
    purchase = purchase_of_payment(dispute.payment_intent_id)
    if purchase is None:
        log.info("dispute %s of a payment that is not a PureBridge purchase", dispute_id)
        return None
    credited = _credited(purchase)
    with transaction.atomic():
        # The account's balance row first: its disputes are decided one at a time.
        Balance.objects.select_for_update().get_or_create(account_id=purchase.account_id)
        row, _ = StripeDispute.objects.update_or_create(
            dispute_id=dispute.id,
            defaults={
                "purchase": purchase,
                "amount": dispute.amount,
                "currency": dispute.currency,
                "status": dispute.status,
                "reason": dispute.reason[:100],
            },
        )
        if credited is not None:
            _hold(credited, dispute)
        else:
            log.warning("dispute %s of %s, never credited", dispute.id, purchase.session_id)
        _block(purchase.account_id)
    return row


def _hold(purchase: Purchase, dispute: stripe_api.Dispute) -> None:
    title = purchase.plan.title or purchase.plan.name
    held = _share(
        purchase.credit_usd, min(dispute.amount, purchase.amount_total), purchase.amount_total
    )
    ledger_post(
        account_id=purchase.account_id,
        kind=Kind.DISPUTE,
        amount=-held,
        source=f"dispute:{dispute.id}",
        reference=f"Disputed: {title}",
    )
    if dispute.status in RELEASED:
        hold = LedgerEntry.objects.get(source=f"dispute:{dispute.id}")
        ledger_post(
            account_id=purchase.account_id,
            kind=Kind.DISPUTE_RELEASE,
            amount=-hold.amount_usd,
            source=f"dispute_release:{dispute.id}",
            reference=f"Dispute won: {title}",
        )


def _block(account_id: int) -> None:
    open_disputes = sorted(
        StripeDispute.objects.filter(purchase__account_id=account_id)
        .exclude(status__in=CLOSED)
        .values_list("dispute_id", flat=True)
    )
    reason = f"Payment disputed ({', '.join(open_disputes)})"[:200] if open_disputes else ""
    balance = Balance.objects.filter(account_id=account_id).first()
    if balance is not None and balance.blocked_reason != reason:
        # A save of this one column: the gateway's workers hear of it
        # (gateway/invalidation.py) while a concurrent ledger_post moves the others.
        balance.blocked_reason = reason
        balance.save(update_fields=["blocked_reason", "updated_at"])


def _credited(purchase: Purchase) -> Purchase | None:
    """The purchase, credited first if Stripe says it was paid; None if it
    was never credited (and so has nothing to take back)."""
    if purchase.status != Purchase.Status.CREDITED:
        purchase = checkout_fulfil(purchase.session_id) or purchase
    return purchase if purchase.status == Purchase.Status.CREDITED else None


def _share(credit: Decimal, part: int, whole: int) -> Decimal:
    with localcontext() as context:
        context.prec = 60
        return (credit * part / whole).quantize(_PRECISION, rounding=ROUND_HALF_UP)
