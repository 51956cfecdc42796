"""What the usage page shows for one set of filters: totals against the
previous span, three charts and the key × model table (usage/reports.py reads
the rollups, usage/charts.py lays the charts out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from accounts.models import Account
from console.templatetags.pb import usd
from usage import reports
from usage.charts import Chart, Series, stacked
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
    label = _label(filters)
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
            _cost_chart(by_bucket, filters, names, label),
            _requests_chart(by_bucket, label),
            _tokens_chart(by_bucket, label),
        ],
        table=[
            Row(key_id, names.get(key_id, f"Deleted key #{key_id}"), model, counts)
            for key_id, model, counts in reports.table(account, filters)
        ],
    )


def _label(filters: Filters):
    if filters.span.hourly:
        return lambda bucket: f"{bucket:%d %b %H:%M}"
    return lambda bucket: f"{bucket:%d %b}"


def _summed(by_bucket: dict[datetime, dict[str, Counts]]) -> list[Counts]:
    summed = []
    for groups in by_bucket.values():
        total = Counts()
        for counts in groups.values():
            total.add(counts)
        summed.append(total)
    return summed


def _cost_chart(by_bucket, filters: Filters, names: dict[int, str], label) -> Chart:
    grouped = reports.group_totals(by_bucket)
    ranked = sorted(grouped, key=lambda g: (-grouped[g].cost_usd, g))
    shown, rest = ranked[:TOP_GROUPS], ranked[TOP_GROUPS:]

    def name(group: str) -> str:
        return names.get(int(group), f"Deleted key #{group}") if filters.group == "key" else group

    series = [
        Series(
            name(g),
            f"s{i}",
            [groups[g].cost_usd if g in groups else Decimal(0) for groups in by_bucket.values()],
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
        bucket_label=label,
        series=series,
        fmt=usd,
    )


def _requests_chart(by_bucket, label) -> Chart:
    summed = _summed(by_bucket)
    return stacked(
        id="chart-requests",
        title="Requests",
        desc="Requests per period: those answered without error, and errors (status 400 or above) on top.",
        buckets=list(by_bucket),
        bucket_label=label,
        series=[
            Series("Succeeded", "s-ok", [c.requests - c.errors for c in summed]),
            Series("Errors", "s-error", [c.errors for c in summed]),
        ],
        fmt=count,
    )


def _tokens_chart(by_bucket, label) -> Chart:
    summed = _summed(by_bucket)
    return stacked(
        id="chart-tokens",
        title="Tokens",
        desc=(
            "Tokens per period, stacked: prompt tokens read from the cache and the rest of "
            "the prompt, reasoning tokens and the rest of the completion."
        ),
        buckets=list(by_bucket),
        bucket_label=label,
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
