"""The budget alert email, from its subject / text / HTML templates
(templates/usage/email/budget-alert*).

A key's name is whatever its owner typed, and once went unchecked: it is put
on one line before it reaches the subject, where a CR or LF would start a
header of its own (Django refuses such an email with BadHeaderError, so the
owner would never hear of the crossing).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from keys.models import ApiKey
from purebridge.text import one_line

WINDOW_LABELS = {"daily": "daily budget", "monthly": "monthly budget", "total": "total quota"}
CENTS = Decimal("0.01")


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
    connection: Any = None,
) -> EmailMultiAlternatives:
    context = {
        "key": key,
        "key_name": one_line(key.name),
        "window": WINDOW_LABELS[window],
        "period": period,
        "threshold": threshold,
        "spent": spent.quantize(CENTS),
        "limit": limit.quantize(CENTS),
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
        connection=connection,
    )
    message.attach_alternative(
        render_to_string("usage/email/budget-alert.html", context), "text/html"
    )
    return message
