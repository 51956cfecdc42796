"""Unusual spend: a key running far above its own recent baseline (a runaway
agent loop), found each hour from the hourly rollups, mailed once per
episode and shown on the overview and the key's page while it lasts.

The rule (README "Unusual spend"; the thresholds are settings): a key's last
clock hour is unusual when its spend, its requests or its tokens per request
are at least PUREBRIDGE_ANOMALY_FACTOR times the median of the same figure
over the key's active hours (those with a request) in the
PUREBRIDGE_ANOMALY_BASELINE_DAYS before it. A median rather than a mean: an
earlier runaway hour, or one busy afternoon, does not lift the baseline
enough to hide the next one. Never with fewer than
PUREBRIDGE_ANOMALY_MIN_HISTORY_HOURS active hours to compare with (a new key
has no "usual"), nor when the hour spent less than
PUREBRIDGE_ANOMALY_MIN_SPEND_USD (a tiny key, whose tenfold is still cents).

An episode opens with the first unusual hour (its SpendAnomaly row, at most
one open per key, is the claim: the email goes once however many workers or
runs find it) and ends with the first hour checked that is not unusual; a
later spike is a new episode and a new email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import median

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F, Sum
from django.db.models.functions import Now

from accounts.models import Account
from keys.models import ApiKey
from purebridge.mail import send_once
from usage import budgets
from usage.emails import spend_anomaly_email
from usage.models import SpendAnomaly, UsageHourly

# The budget alerts' choice of address: the key's, the account's, its owner's.
from usage.services import _recipient as alert_recipient

log = logging.getLogger(__name__)
METRICS = ("spend", "requests", "tokens_per_request")


@dataclass(frozen=True)
class HourFigures:
    """One key's use in one clock hour, over every model."""

    spend: Decimal
    requests: int
    tokens: int

    def metric(self, name: str) -> Decimal:
        if name == "spend":
            return self.spend
        if name == "requests":
            return Decimal(self.requests)
        return Decimal(self.tokens) / self.requests if self.requests else Decimal(0)


@dataclass(frozen=True)
class Verdict:
    """An unusual hour: its figures, the key's usual ones, and which are far above."""

    current: HourFigures
    usual: dict[str, Decimal]
    reasons: list[str]


def judge(current: HourFigures, history: list[HourFigures]) -> Verdict | None:
    """`current` against the key's active hours before it: a Verdict if unusual."""
    if current.spend < settings.PUREBRIDGE_ANOMALY_MIN_SPEND_USD:
        return None
    if len(history) < settings.PUREBRIDGE_ANOMALY_MIN_HISTORY_HOURS:
        return None
    factor = settings.PUREBRIDGE_ANOMALY_FACTOR
    usual = {name: median(h.metric(name) for h in history) for name in METRICS}
    reasons = [name for name in METRICS if current.metric(name) >= factor * usual[name]]
    return Verdict(current, usual, reasons) if reasons else None


def last_whole_hour(at: datetime | None = None) -> datetime:
    """The start of the clock hour (UTC, as the rollups bucket) before this one."""
    now = (at or budgets.now()).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _figures(row: dict) -> HourFigures:
    return HourFigures(row["spend"] or Decimal(0), row["requests"] or 0, row["tokens"] or 0)


def _per_key_hour(hourly):
    return (
        hourly.values("api_key_id", "hour")
        .annotate(
            spend=Sum("cost_usd"),
            requests=Sum("requests"),
            tokens=Sum(F("prompt_tokens") + F("completion_tokens")),
        )
        .order_by()
    )


def _hour_figures(hour: datetime) -> dict[int, HourFigures]:
    rows = _per_key_hour(UsageHourly.objects.filter(hour=hour))
    return {row["api_key_id"]: _figures(row) for row in rows}


def _history(key_ids: list[int], hour: datetime) -> dict[int, list[HourFigures]]:
    since = hour - timedelta(days=settings.PUREBRIDGE_ANOMALY_BASELINE_DAYS)
    hourly = UsageHourly.objects.filter(api_key_id__in=key_ids, hour__gte=since, hour__lt=hour)
    history: dict[int, list[HourFigures]] = {}
    for row in _per_key_hour(hourly).filter(requests__gt=0):
        history.setdefault(row["api_key_id"], []).append(_figures(row))
    return history


def spend_anomalies_check(*, hour: datetime | None = None) -> int:
    """Judge the keys used in `hour` (default: the last whole clock hour): open
    an episode, and mail it, for each unusual key without one; end the open
    episodes of every other key. Safe to run twice for the same hour.
    Returns the emails sent."""
    hour = hour or last_whole_hour()
    current = _hour_figures(hour)
    floor = settings.PUREBRIDGE_ANOMALY_MIN_SPEND_USD
    candidates = [key_id for key_id, figures in current.items() if figures.spend >= floor]
    history = _history(candidates, hour)
    verdicts = {
        key_id: verdict
        for key_id in candidates
        if (verdict := judge(current[key_id], history.get(key_id, []))) is not None
    }
    ended = (
        SpendAnomaly.objects.filter(ended_at__isnull=True)
        .exclude(api_key_id__in=list(verdicts))
        .update(ended_at=Now())
    )
    if ended:
        log.info("%d unusual spend episodes ended with the hour from %s", ended, hour)
    keys = ApiKey.objects.select_related("account").in_bulk(list(verdicts))
    sent = 0
    for key_id, verdict in verdicts.items():
        key = keys.get(key_id)
        if key is not None and _open_and_mail(key, hour, verdict):
            sent += 1
    return sent


def _open_and_mail(key: ApiKey, hour: datetime, verdict: Verdict) -> bool:
    """Open the key's episode and send its email, once (purebridge.mail.send_once:
    a failed send rolls the episode back for the task's retry; one already
    open, this run's twin or the last hour's, is a unique row taken)."""
    if SpendAnomaly.objects.filter(api_key=key, ended_at__isnull=True).exists():
        return False
    recipient = alert_recipient(key)

    def email(anomaly: SpendAnomaly) -> EmailMultiAlternatives | None:
        return spend_anomaly_email(anomaly, to=recipient) if recipient else None  # banner only

    return send_once(lambda: _open(key, hour, verdict, recipient), email)


def _open(key: ApiKey, hour: datetime, verdict: Verdict, recipient: str) -> SpendAnomaly:
    current, usual = verdict.current, verdict.usual
    places = Decimal("0.01")
    return SpendAnomaly.objects.create(
        api_key=key,
        account=key.account,
        hour=hour,
        spend_usd=current.spend,
        baseline_spend_usd=usual["spend"],
        requests=current.requests,
        baseline_requests=usual["requests"].quantize(places),
        tokens_per_request=current.metric("tokens_per_request").quantize(places),
        baseline_tokens_per_request=usual["tokens_per_request"].quantize(places),
        reasons=",".join(verdict.reasons),
        recipient=recipient,
    )


def open_anomalies(*, account: Account, api_key: ApiKey | None = None) -> list[SpendAnomaly]:
    """The account's open episodes (or the key's), for the console's banners."""
    anomalies = SpendAnomaly.objects.filter(account=account, ended_at__isnull=True)
    if api_key is not None:
        anomalies = anomalies.filter(api_key=api_key)
    return list(anomalies.select_related("api_key").order_by("-hour"))
