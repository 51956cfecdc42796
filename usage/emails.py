"""The budget alert email, from its subject / text / HTML templates
(templates/usage/email/budget-alert*).

A key's name is whatever its owner typed, and once went unchecked: it is put
on one line before it reaches the subject, where a CR or LF would start a
header of its own (Django refuses such an email with BadHeaderError, so the
owner would never hear of the crossing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from keys.models import ApiKey
from purebridge.text import one_line
from usage.models import SpendAnomaly

WINDOW_LABELS = {"daily": "daily budget", "monthly": "monthly budget", "total": "total quota"}


def budget_alert(
    key: ApiKey,
    *,
    window: str,
    period: str,
    threshold: int,
    spent: Decimal,
    limit: Decimal,
    resets_at: datetime | None,
    recipient: str,
) -> EmailMultiAlternatives:
    context = {
        "key": key,
        "key_name": one_line(key.name),
        "window": WINDOW_LABELS[window],
        "period": period,
        "threshold": threshold,
        "spent": spent,
        "limit": limit,
        # In the account's time zone, as the window itself.
        "resets_at": resets_at.strftime("%Y-%m-%d %H:%M %Z") if resets_at else "",
        "key_url": f"{settings.PUREBRIDGE_CONSOLE_URL}/keys/{key.id}/",
    }
    subject = one_line(render_to_string("usage/email/budget-alert-subject.txt", context))
    message = EmailMultiAlternatives(
        subject,
        render_to_string("usage/email/budget-alert.txt", context),
        None,
        [recipient],
    )
    message.attach_alternative(
        render_to_string("usage/email/budget-alert.html", context), "text/html"
    )
    return message


REASON_LABELS = {
    "spend": "spend",
    "requests": "requests",
    "tokens_per_request": "tokens per request",
}


def spend_anomaly_email(anomaly: SpendAnomaly, *, to: str) -> EmailMultiAlternatives:
    """The unusual spend email (templates/usage/email/spend-anomaly*)."""
    key = anomaly.api_key
    tz = ZoneInfo(key.timezone)
    start = anomaly.hour.astimezone(tz)
    context = {
        "key": key,
        "key_name": one_line(key.name),
        "hour": f"{start:%Y-%m-%d %H:%M}–{start + timedelta(hours=1):%H:%M %Z}",
        "reasons": " and ".join(REASON_LABELS[r] for r in anomaly.reasons.split(",")),
        "spend": anomaly.spend_usd,
        "baseline_spend": anomaly.baseline_spend_usd,
        "requests": anomaly.requests,
        "baseline_requests": f"{anomaly.baseline_requests.normalize():f}",  # 10, 10.5
        "tokens_per_request": round(anomaly.tokens_per_request),
        "baseline_tokens_per_request": round(anomaly.baseline_tokens_per_request),
        "baseline_days": settings.PUREBRIDGE_ANOMALY_BASELINE_DAYS,
        "key_url": f"{settings.PUREBRIDGE_CONSOLE_URL}/keys/{key.id}/",
    }
    subject = one_line(render_to_string("usage/email/spend-anomaly-subject.txt", context))
    message = EmailMultiAlternatives(
        subject, render_to_string("usage/email/spend-anomaly.txt", context), None, [to]
    )
    message.attach_alternative(
        render_to_string("usage/email/spend-anomaly.html", context), "text/html"
    )
    return message
