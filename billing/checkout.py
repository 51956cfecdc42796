"""Plans bought with Stripe Checkout: a session made from the plan, and one
idempotent fulfilment that credits it once, when Stripe says it is paid.

`checkout_fulfil` is called by the webhook (every checkout.session.* event),
by the success page and by the sweep of sessions whose webhook never came;
whichever comes first credits and the others find it done. What decides is
the session as Stripe has it now (retrieved, never taken from an event), read
against the Purchase row made with the session, which alone says whose
account it credits and how much: metadata and client_reference_id are labels
for people, never trusted. "Once" is the ledger's unique source
(`stripe_checkout:<session>`) and the Purchase row's lock, so any number of
web workers and hosts may fulfil the same session at the same moment.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from billing import stripe_api
from billing.models import LedgerEntry, Plan, Purchase
from billing.services import ledger_post

log = logging.getLogger(__name__)
Status = Purchase.Status
_ATTEMPT = re.compile(r"[A-Za-z0-9_-]{8,64}")


class PlanNotForSale(Exception):
    """The plan cannot be bought: inactive, or priced in amounts its currency
    cannot be charged in."""


@dataclass(frozen=True, slots=True)
class Checkout:
    purchase: Purchase
    url: str  # where to send the customer: Stripe's hosted page


def checkout_start(*, account: Account, plan: Plan, email: str = "", attempt: str = "") -> Checkout:
    """A Checkout Session for `plan`, priced from the plan alone (one item at
    its price and currency), and its Purchase row. `attempt` names one press
    of "Buy" (a token the page rendered): pressing twice makes one session.
    Raises PlanNotForSale, stripe_api.StripeFailure (StripeNotConfigured when
    Stripe is not set up)."""
    if not plan.active:
        raise PlanNotForSale(f"plan {plan.name} is not active")
    try:
        amount = stripe_api.minor_units(plan.price, plan.currency)
    except ValueError as exc:
        raise PlanNotForSale(f"plan {plan.name}: {exc}") from None
    if not _ATTEMPT.fullmatch(attempt):
        attempt = uuid.uuid4().hex
    console = settings.PUREBRIDGE_CONSOLE_URL
    session = stripe_api.checkout_session_create(
        amount=amount,
        currency=plan.currency,
        name=plan.title or plan.name,
        description=plan.description,
        account_id=account.pk,
        plan_name=plan.name,
        # Stripe puts the session's id in place of {CHECKOUT_SESSION_ID}.
        success_url=f"{console}{reverse('billing:checkout_success')}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{console}{reverse('billing:checkout_cancel')}?plan={plan.name}",
        email=email,
        # The plan's last change is in the key: an edited plan makes a new session.
        idempotency_key=(
            f"purebridge-checkout:{account.pk}:{plan.pk}:"
            f"{int(plan.updated_at.timestamp())}:{attempt}"
        ),
    )
    purchase, _ = Purchase.objects.get_or_create(
        session_id=session.id,
        defaults={
            "account": account,
            "plan": plan,
            "amount_total": amount,
            "currency": plan.currency,
            "credit_usd": plan.credit_usd,
        },
    )
    return Checkout(purchase=purchase, url=session.url)


def checkout_fulfil(session_id: str) -> Purchase | None:
    """Bring a purchase up to date with its Checkout Session, crediting the
    plan's credit once when the session is paid. None when no purchase was
    made with that session (not PureBridge's). Raises stripe_api.StripeFailure
    when Stripe cannot be asked (nothing changes; ask again later)."""
    purchase = Purchase.objects.filter(session_id=session_id).first()
    if purchase is None:
        log.info("checkout session %s is not one of PureBridge's purchases", session_id)
        return None
    if purchase.settled:
        return purchase
    # Asked outside the transaction: no row stays locked while Stripe answers.
    session = stripe_api.checkout_session_retrieve(session_id)
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().select_related("plan").get(pk=purchase.pk)
        if not purchase.settled:
            _follow(purchase, session)
    return purchase


def checkout_sweep(
    *,
    older_than: timedelta = timedelta(minutes=5),
    within: timedelta = timedelta(days=14),
    limit: int = 200,
) -> int:
    """Fulfil the purchases still waiting (open, or paid by a method that
    settles later) whose webhook may have been lost: made at least
    `older_than` ago (the webhook's turn first) and within `within` (async
    payments settle in days). Least recently checked first. Returns how many
    were credited."""
    now = timezone.now()
    waiting = (
        Purchase.objects.filter(
            status__in=[Status.OPEN, Status.PROCESSING],
            created_at__lte=now - older_than,
            created_at__gte=now - within,
        )
        .order_by("updated_at")
        .values_list("session_id", flat=True)[:limit]
    )
    credited = 0
    for session_id in list(waiting):
        try:
            purchase = checkout_fulfil(session_id)
        except stripe_api.StripeFailure as exc:
            log.warning("sweep: %s", exc)
            continue
        if purchase is not None and purchase.status == Status.CREDITED:
            log.warning("sweep: credited %s, whose webhook never came", session_id)
            credited += 1
    return credited


def _follow(purchase: Purchase, session: stripe_api.Session) -> None:
    """Move a locked, unsettled purchase to what its session says."""
    if session.client_reference_id not in ("", str(purchase.account_id)):
        log.warning(
            "checkout session %s names account %s; its purchase (account %s) decides",
            session.id,
            session.client_reference_id,
            purchase.account_id,
        )
    purchase.payment_intent_id = session.payment_intent_id or purchase.payment_intent_id
    purchase.charge_id = session.charge_id or purchase.charge_id
    purchase.receipt_url = session.receipt_url or purchase.receipt_url
    if session.status == "expired":
        purchase.status = Status.EXPIRED
    elif session.payment_status == "paid":
        if (session.amount_total, session.currency) == (purchase.amount_total, purchase.currency):
            _credit(purchase)
        else:
            log.error(
                "checkout session %s was paid %s %s, its plan costs %s %s: not credited, "
                "for the operator to review",
                session.id,
                session.amount_total,
                session.currency,
                purchase.amount_total,
                purchase.currency,
            )
            purchase.status = Status.REVIEW
    elif session.payment_status == "no_payment_required":
        log.error("checkout session %s needed no payment: not credited, for review", session.id)
        purchase.status = Status.REVIEW
    elif session.status == "complete":
        # Completed unpaid: a payment method that settles later (bank debits).
        failed = session.payment_intent_status in ("requires_payment_method", "canceled")
        purchase.status = Status.FAILED if failed else Status.PROCESSING
    purchase.save()


def _credit(purchase: Purchase) -> None:
    plan = purchase.plan
    source = f"stripe_checkout:{purchase.session_id}"
    expires_at = None
    if plan.credit_valid_days:
        expires_at = timezone.now() + timedelta(days=plan.credit_valid_days)
    entry = ledger_post(
        account_id=purchase.account_id,
        kind=LedgerEntry.Kind.PURCHASE,
        amount=purchase.credit_usd,
        source=source,
        reference=plan.title or plan.name,
        receipt_url=purchase.receipt_url,
        expires_at=expires_at,
    )
    purchase.ledger_entry = entry or LedgerEntry.objects.get(source=source)
    purchase.status = Status.CREDITED
    purchase.credited_at = timezone.now()
