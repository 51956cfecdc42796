"""Stripe, read and written through this module only (like a provider adapter).

It holds every Stripe quirk: the client and its settings (STRIPE_SECRET_KEY,
STRIPE_API_BASE, which the tests point at their fake Stripe server), the
request shapes, the answers parsed into small frozen records, the webhook
signature check, and money in the currency's smallest unit, which appears
nowhere else. Every failure of a call is a StripeFailure, `permanent` when
asking again would get the same answer.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from stripe.params.checkout import SessionCreateParams

log = logging.getLogger(__name__)

# Stripe counts these currencies in whole units and these in thousandths
# (https://docs.stripe.com/currencies#zero-decimal); every other in hundredths.
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])


class StripeFailure(Exception):
    """A call to Stripe that did not give an answer to act on."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class StripeNotConfigured(StripeFailure, ImproperlyConfigured):
    def __init__(self) -> None:
        super().__init__(
            "Stripe is not configured: set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET",
            permanent=True,
        )


class BadSignature(Exception):
    """A webhook delivery whose Stripe-Signature does not prove it is Stripe's
    (missing, wrong secret, altered body, or older than the tolerance)."""


@dataclass(frozen=True, slots=True)
class Session:
    """A Checkout Session as Stripe has it now."""

    id: str
    url: str
    status: str  # open, complete, expired
    payment_status: str  # paid, unpaid, no_payment_required
    amount_total: int
    currency: str
    client_reference_id: str
    metadata: dict[str, str]
    payment_intent_id: str
    payment_intent_status: str  # succeeded, processing, requires_payment_method, canceled, ...
    charge_id: str
    receipt_url: str


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    amount: int
    status: str  # pending, requires_action, succeeded, failed, canceled
    created: int


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    charge_id: str
    payment_intent_id: str
    amount: int
    currency: str
    status: str  # warning_needs_response, needs_response, under_review, won, lost, ...
    reason: str


def configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def minor_units(amount: Decimal, currency: str) -> int:
    """`amount` of `currency` in the smallest unit Stripe counts it in; an
    amount that unit cannot hold exactly is refused, never rounded."""
    units = amount.scaleb(_exponent(currency))
    if units != units.to_integral_value() or units <= 0:
        raise ValueError(f"{amount} {currency} is not a whole number of its smallest unit")
    return int(units)


def major_units(units: int, currency: str) -> Decimal:
    """The amount `units` of the currency's smallest unit make (for people)."""
    return Decimal(units).scaleb(-_exponent(currency))


def _exponent(currency: str) -> int:
    currency = currency.lower()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def checkout_session_create(
    *,
    amount: int,
    currency: str,
    name: str,
    description: str,
    account_id: int,
    plan_name: str,
    success_url: str,
    cancel_url: str,
    email: str,
    idempotency_key: str,
) -> Session:
    """A hosted Checkout Session (mode=payment) for one item at `amount`."""
    labels = {"purebridge_account": str(account_id), "purebridge_plan": plan_name}
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": name},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": str(account_id),
        "metadata": labels,
        # The same labels on the payment, for the operator reading the
        # Stripe dashboard's payments, refunds and disputes.
        "payment_intent_data": {"metadata": labels},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if description:
        params["line_items"][0]["price_data"]["product_data"]["description"] = description
    if email:
        params["customer_email"] = email
    with _failures("create a Checkout Session"):
        session = client().v1.checkout.sessions.create(params, {"idempotency_key": idempotency_key})
    return _session(session.to_dict())


def checkout_session_retrieve(session_id: str) -> Session:
    with _failures(f"retrieve Checkout Session {session_id}"):
        session = client().v1.checkout.sessions.retrieve(
            session_id, {"expand": ["payment_intent.latest_charge"]}
        )
    return _session(session.to_dict())


def checkout_session_of_payment(payment_intent_id: str) -> str | None:
    """The id of the Checkout Session that made a payment, if one did."""
    with _failures(f"find the Checkout Session of {payment_intent_id}"):
        found = client().v1.checkout.sessions.list(
            {"payment_intent": payment_intent_id, "limit": 1}
        )
    sessions = found.to_dict().get("data") or []
    return str(sessions[0]["id"]) if sessions else None


def refunds_of(payment_intent_id: str) -> list[Refund]:
    """Every refund of a payment, oldest first."""
    with _failures(f"list the refunds of {payment_intent_id}"):
        page = client().v1.refunds.list({"payment_intent": payment_intent_id, "limit": 100})
        refunds = [r.to_dict() for r in page.auto_paging_iter()]
    parsed = [
        Refund(
            id=str(r["id"]),
            amount=int(r.get("amount") or 0),
            status=str(r.get("status") or ""),
            created=int(r.get("created") or 0),
        )
        for r in refunds
    ]
    # Stripe lists newest first; `created` is in whole seconds, so refunds of
    # one second keep the list's order, reversed (a stable sort), not an id's.
    parsed.reverse()
    parsed.sort(key=lambda r: r.created)
    return parsed


def dispute_retrieve(dispute_id: str) -> Dispute:
    with _failures(f"retrieve dispute {dispute_id}"):
        d = client().v1.disputes.retrieve(dispute_id).to_dict()
    return Dispute(
        id=str(d["id"]),
        charge_id=object_id(d.get("charge")),
        payment_intent_id=object_id(d.get("payment_intent")),
        amount=int(d.get("amount") or 0),
        currency=str(d.get("currency") or ""),
        status=str(d.get("status") or ""),
        reason=str(d.get("reason") or ""),
    )


def event_verify(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event a webhook delivery carries, once its signature (HMAC-SHA256 of
    the raw bytes with the endpoint's secret, within Stripe's 300 s tolerance)
    proves it is Stripe's; BadSignature otherwise."""
    if not configured():
        raise StripeNotConfigured()
    try:
        event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(str(exc).split("\n")[0]) from None
    except ValueError as exc:  # signed, but not a JSON event (or not UTF-8)
        raise BadSignature(f"not an event: {exc}") from None
    return event.to_dict()


def client() -> stripe.StripeClient:
    """The process's Stripe client (one per setting values, so the tests'
    settings reach it)."""
    if not configured():
        raise StripeNotConfigured()
    return _client(
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS
    )


@functools.cache
def _client(key: str, base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        key,
        base_addresses={"api": base},
        # Retries (connection errors, 409, 5xx) resend the same Idempotency-Key.
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


@contextmanager
def _failures(doing: str) -> Iterator[None]:
    """Turns the stripe package's errors into StripeFailure."""
    try:
        yield
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        permanent = 400 <= status < 500 and status not in (409, 429)
        message = exc.user_message or type(exc).__name__
        raise StripeFailure(
            f"Stripe: could not {doing}: {message} (HTTP {status or 'none'})",
            permanent=permanent,
        ) from exc


def _session(s: dict[str, Any]) -> Session:
    intent = s.get("payment_intent")
    intent = intent if isinstance(intent, dict) else {"id": intent}
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, dict) else {"id": charge}
    return Session(
        id=str(s["id"]),
        url=str(s.get("url") or ""),
        status=str(s.get("status") or ""),
        payment_status=str(s.get("payment_status") or ""),
        amount_total=int(s.get("amount_total") or 0),
        currency=str(s.get("currency") or "").lower(),
        client_reference_id=str(s.get("client_reference_id") or ""),
        metadata={str(k): str(v) for k, v in (s.get("metadata") or {}).items()},
        payment_intent_id=str(intent.get("id") or ""),
        payment_intent_status=str(intent.get("status") or ""),
        charge_id=str(charge.get("id") or ""),
        receipt_url=str(charge.get("receipt_url") or ""),
    )


def object_id(value: Any) -> str:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")
