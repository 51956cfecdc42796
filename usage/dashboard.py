"""What the usage page shows for one set of filters: totals against the
previous span, three charts and the key × model table (usage/reports.py reads
the rollups, usage/charts.py lays the charts out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from accounts.models import Account
from console.templatetags.pb import NO_MODEL, NO_MODEL_HINT, usd
from usage import reports
from usage.charts import AxisLabel, Chart, Series, stacked
from usage.reports import Change, Counts, Filters

TOP_GROUPS = 6  # stacked series in the cost chart; the rest are one "Other"


@dataclass(frozen=True)
class Row:
    key_id: int
    key: str
    model: str
    counts: Counts


@dataclass(frozen=True)
class Dashboard:
    filters: Filters
    totals: Counts
    changes: dict[str, Change]
    charts: list[Chart]
    table: list[Row]


def count(value: Decimal | int) -> str:
    return f"{int(value):,}"


def dashboard(account: Account, filters: Filters, names: dict[int, str]) -> Dashboard:
    totals = reports.totals(account, filters)
    before = reports.totals(account, filters, filters.span.previous())
    by_bucket = reports.series(account, filters)
    return Dashboard(
        filters=filters,
        totals=totals,
        changes={
            "cost": Change(totals.cost_usd, before.cost_usd),
            "requests": Change(totals.requests, before.requests),
            "tokens": Change(totals.tokens, before.tokens),
            "errors": Change(totals.errors, before.errors),
        },
        charts=[
            _cost_chart(by_bucket, filters, names),
            _requests_chart(by_bucket, filters),
            _tokens_chart(by_bucket, filters),
        ],
        table=[
            Row(key_id, names.get(key_id, f"Deleted key #{key_id}"), model, counts)
            for key_id, model, counts in reports.table(account, filters)
        ],
    )


def _axes(filters: Filters) -> dict[str, Any]:
    """How the charts name their buckets: in full, and on the x axis."""
    return {
        "bucket_label": _label(filters),
        "axis_label": _axis_label(filters),
        "hourly": filters.span.hourly,
    }


def _label(filters: Filters) -> Callable[[datetime], str]:
    if filters.span.hourly:
        return lambda bucket: f"{bucket:%d %b %H:%M}"
    return lambda bucket: f"{bucket:%d %b}"


def _axis_label(filters: Filters) -> AxisLabel:
    """Hours as 22:00, with the day where it changes: alone at midnight,
    before the hour on the first label and after a skipped midnight."""

    def hourly(bucket: datetime, before: datetime | None) -> str:
        if before is not None and before.date() == bucket.date():
            return f"{bucket:%H:%M}"
        if bucket.hour == 0 and bucket.minute == 0:
            return f"{bucket:%d %b}"
        return f"{bucket:%d %b %H:%M}"

    if filters.span.hourly:
        return hourly
    return lambda bucket, before: f"{bucket:%d %b}"


def _summed(by_bucket: dict[datetime, dict[str, Counts]]) -> list[Counts]:
    summed = []
    for groups in by_bucket.values():
        total = Counts()
        for counts in groups.values():
            total.add(counts)
        summed.append(total)
    return summed


def _cost_chart(by_bucket, filters: Filters, names: dict[int, str]) -> Chart:
    grouped = reports.group_totals(by_bucket)
    ranked = sorted(grouped, key=lambda g: (-grouped[g].cost_usd, g))
    shown, rest = ranked[:TOP_GROUPS], ranked[TOP_GROUPS:]

    def name(group: str) -> str:
        if filters.group == "key":
            return names.get(int(group), f"Deleted key #{group}")
        return group or NO_MODEL

    series = [
        Series(
            name(g),
            f"s{i}",
            [groups[g].cost_usd if g in groups else Decimal(0) for groups in by_bucket.values()],
            hint="" if filters.group == "key" or g else NO_MODEL_HINT,
        )
        for i, g in enumerate(shown)
    ]
    if rest:
        other = [
            sum((groups[g].cost_usd for g in rest if g in groups), Decimal(0))
            for groups in by_bucket.values()
        ]
        series.append(Series("Other", "s-other", other))
    by = "key" if filters.group == "key" else "model"
    return stacked(
        id="chart-cost",
        title=f"Cost by {by}",
        desc=f"US dollars spent per period, stacked by {by}; the data table below lists every bar.",
        buckets=list(by_bucket),
        **_axes(filters),
        series=series,
        fmt=usd,
    )


def _requests_chart(by_bucket, filters: Filters) -> Chart:
    summed = _summed(by_bucket)
    return stacked(
        id="chart-requests",
        title="Requests",
        desc="Requests per period: those answered without error, and errors (status 400 or above) on top.",
        buckets=list(by_bucket),
        **_axes(filters),
        series=[
            Series("Succeeded", "s-ok", [c.requests - c.errors for c in summed]),
            Series("Errors", "s-error", [c.errors for c in summed]),
        ],
        fmt=count,
    )


def _tokens_chart(by_bucket, filters: Filters) -> Chart:
    summed = _summed(by_bucket)
    return stacked(
        id="chart-tokens",
        title="Tokens",
        desc=(
            "Tokens per period, stacked: prompt tokens read from the cache and the rest of "
            "the prompt, reasoning tokens and the rest of the completion."
        ),
        buckets=list(by_bucket),
        **_axes(filters),
        series=[
            Series("Prompt, not cached", "s0", [c.prompt_tokens - c.cached_tokens for c in summed]),
            Series("Prompt, cached", "s1", [c.cached_tokens for c in summed]),
            Series(
                "Completion, not reasoning",
                "s2",
                [c.completion_tokens - c.reasoning_tokens for c in summed],
            ),
            Series("Reasoning", "s3", [c.reasoning_tokens for c in summed]),
        ],
        fmt=count,
    )
