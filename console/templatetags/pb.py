"""Formatting for the console: money, token counts and limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

register = template.Library()

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")

# A usage record has no model when none was asked for or none was known yet.
NO_MODEL = "(no model)"
NO_MODEL_HINT = (
    "Requests that name no model: model listings (GET /v1/models), key info (GET /v1/key) "
    "and requests refused before their model was known"
)


@register.filter
def usd(value: Decimal | int | float | str | None) -> str:
    """Money, for balances, ledger entries, spend, budgets and alerts: to the
    cent when the amount is exact to the cent ($5.00, $1,234.50), else to the
    micro-dollar without trailing zeros ($4.99937, $0.000036).

    A non-zero amount never reads as a round one: under a micro-dollar it is
    <$0.000001, and one that rounds to whole cents keeps its six places
    ($5.000000 for $4.9999999), so a balance that has moved shows it moved.
    A negative amount has a true minus sign (−$0.50)."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    sign = "−" if amount < 0 else ""
    amount = abs(amount)
    if amount == amount.quantize(CENT):
        return f"{sign}${amount.quantize(CENT):,}"
    micro = amount.quantize(MICRO)
    if micro == 0:
        return f"{sign}<$0.000001"
    if micro == micro.quantize(CENT):
        places = 6
    else:
        exponent = micro.normalize().as_tuple().exponent
        places = max(2, -exponent) if isinstance(exponent, int) else 6
    return f"{sign}${micro:,.{places}f}"


@register.filter
def usd_abs(value: Decimal | None) -> str:
    """An amount without its sign ("You owe $1.23")."""
    return usd(None if value is None else abs(Decimal(str(value))))


@register.filter
def signed_usd(value: Decimal | None) -> str:
    """+$10.00 for a credit, −$0.000123 for a debit (a true minus sign)."""
    if value is None:
        return "—"
    amount = Decimal(str(value))
    return ("−" if amount < 0 else "+") + usd(abs(amount))


@register.filter
def money(value: Decimal, currency: str) -> str:
    """A price in its currency, to the currency's smallest unit: $10.00, 1,500 JPY."""
    from billing.stripe_api import major_units

    amount = Decimal(str(value)).quantize(major_units(1, currency))
    return f"${amount:,}" if currency.lower() == "usd" else f"{amount:,} {currency.upper()}"


@register.filter
def thousands(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


@register.filter
def limit(value: int | None) -> str:
    return "No limit" if value is None else f"{value:,}"


@register.filter
def ago(value: datetime | None) -> str:
    """'just now', '5 minutes ago', or 'Never'."""
    if value is None:
        return "Never"
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"


REASONS = {
    # A refusal for spend names its window; records from before it did not.
    "insufficient_quota": "budget, quota or balance used up",
    "insufficient_quota:daily": "daily budget used up",
    "insufficient_quota:monthly": "monthly budget used up",
    "insufficient_quota:total": "quota used up",
    "insufficient_quota:balance": "balance used up",
    "account_on_hold": "account on hold",
    "ip_not_allowed": "address not allowed",
    "rate_limit_exceeded": "rate limited",
    "client_disconnected": "client left",
    "invalid_api_key": "bad key",
    "model_not_found": "unknown model",
    "upstream_error": "upstream failed",
    "upstream_timeout": "upstream timed out",
    "service_unavailable": "unavailable",
}


@register.filter
def reason(error_type: str) -> str:
    """A usage record's error in words."""
    return REASONS.get(error_type, error_type.replace("_", " ").replace(":", ": "))


@register.filter
def price(value: Decimal | None) -> str:
    """A price per million tokens, exact to the micro-dollar the catalogue
    keeps, with at least cents: $10.00, $1.25, $0.125, $0.000375."""
    if value is None:
        return "—"
    amount = Decimal(str(value)).normalize()
    exponent = amount.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"${amount:,.{places}f}"


@register.filter
def usd_exact(value: Decimal | None) -> str:
    """Every digit of an amount, for lines that must add up: $0.00000125."""
    if value is None:
        return "—"
    amount = Decimal(str(value)).normalize()
    text = f"{amount:f}"
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


@register.filter
def model_id(value: str | None) -> SafeString:
    """A model id exactly as spelled (ids are case-sensitive), or a labelled
    "(no model)" for a request that named none."""
    if not value:
        return format_html('<span class="no-model" title="{}">{}</span>', NO_MODEL_HINT, NO_MODEL)
    return format_html('<span class="model-id">{}</span>', value)


@register.filter
def route_path(endpoint: str) -> str:
    """A usage record's endpoint as the path it was called at, under /v1/:
    chat/completions, messages/count_tokens, models."""
    return endpoint.replace(".", "/")
