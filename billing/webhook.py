"""Stripe's webhook: a delivery is verified, kept, and handed to the service
its event type names.

The answer tells Stripe what to do next: 400 for a delivery that is not
provably Stripe's (nothing is kept or done), 2xx once the event is handled
(or is of a type PureBridge does not handle), anything else when handling
failed, so that Stripe delivers it again. Every verified delivery is kept
(StripeEvent); one is skipped only when an earlier delivery of the same event
was handled without error. Handling is idempotent in any case (the ledger's
unique sources), so deliveries that race on several workers credit once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone

from billing import stripe_api
from billing.checkout import checkout_fulfil
from billing.models import StripeEvent
from billing.reversals import charge_refunds_apply, dispute_apply

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    text: str


def _checkout(session: dict[str, Any]) -> None:
    checkout_fulfil(str(session["id"]))


def _refunded(charge: dict[str, Any]) -> None:
    charge_refunds_apply(payment_intent_id=stripe_api.object_id(charge.get("payment_intent")))


def _dispute(dispute: dict[str, Any]) -> None:
    dispute_apply(str(dispute["id"]))


# The events to select when registering the endpoint (README, "Billing").
HANDLERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "checkout.session.completed": _checkout,
    "checkout.session.async_payment_succeeded": _checkout,
    "checkout.session.async_payment_failed": _checkout,
    "checkout.session.expired": _checkout,
    "charge.refunded": _refunded,
    "charge.dispute.created": _dispute,
    "charge.dispute.updated": _dispute,
    "charge.dispute.closed": _dispute,
}


def stripe_webhook_receive(payload: bytes, signature: str | None) -> Answer:
    """Verify, keep and handle one delivery of Stripe's webhook."""
    try:
        event = stripe_api.event_verify(payload, signature)
    except stripe_api.StripeNotConfigured as exc:
        log.error("a Stripe webhook delivery was refused: %s", exc)
        return Answer(503, "Stripe is not configured on this server")
    except stripe_api.BadSignature as exc:
        log.warning("a Stripe webhook delivery was refused: %s", exc)
        return Answer(400, "bad signature")
    event_id, kind = str(event.get("id") or ""), str(event.get("type") or "")
    data = event.get("data")
    if not event_id or not kind or not isinstance(data, dict) or "object" not in data:
        return Answer(400, "not an event")
    try:
        record = _keep(event_id, kind, event)
    except DatabaseError:
        log.exception("stripe event %s (%s) could not be kept; Stripe will retry", event_id, kind)
        return Answer(503, "not kept; retry")
    if record.processed_at is not None:
        return Answer(200, "handled before")
    handler = HANDLERS.get(kind)
    try:
        if handler is not None:
            handler(data["object"])
        StripeEvent.objects.filter(pk=record.pk).update(processed_at=timezone.now(), error="")
    except Exception as exc:  # every failure must reach Stripe as a retry
        log.exception("stripe event %s (%s) failed; Stripe will retry", event_id, kind)
        _note_failure(record, exc)
        return Answer(500, "failed; retry")
    return Answer(200, "handled" if handler is not None else "ignored")


def _keep(event_id: str, kind: str, event: dict[str, Any]) -> StripeEvent:
    record, created = StripeEvent.objects.get_or_create(
        event_id=event_id, defaults={"type": kind, "payload": event}
    )
    if not created:
        StripeEvent.objects.filter(pk=record.pk).update(deliveries=F("deliveries") + 1)
    return record


def _note_failure(record: StripeEvent, exc: Exception) -> None:
    # A connection the failure broke (the database went away) is replaced.
    connection.close_if_unusable_or_obsolete()
    try:
        StripeEvent.objects.filter(pk=record.pk, processed_at__isnull=True).update(
            error=f"{type(exc).__name__}: {exc}"[:2000]
        )
    except DatabaseError:
        log.exception("stripe event %s: its failure could not be noted", record.event_id)
