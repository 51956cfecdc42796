"""The usage page, the request log and their CSV exports at 5 million usage
records, timed over real HTTP against PureBridge in its production shape.

    scripts/with-services.sh .venv/bin/python benchmarks/usage_scale.py [--records 5000000] [--days 90]

1. Migrates the throwaway database; one account (Asia/Tokyo) with 20 keys and
   6 catalogue models; `--records` usage records over the `--days` before now,
   written by PostgreSQL (harness/usage_records.py); the hourly and daily
   rollups built by the real rollup (usage.services.usage_rollup, one run over
   everything); VACUUM ANALYZE. Each step is timed.
2. gunicorn with one uvicorn worker (harness/servers.py), signed in as the
   account's user (a session made by Django's test client, sent as the cookie).
3. Each page `--runs` times after 2 warm-ups, one keep-alive connection:
   median and p95 of the whole response. Each export once: time to the first
   byte, total, bytes, rows, and the worker's resident memory (VmRSS) sampled
   every 50 ms: peak minus before.
4. A table with the targets (met / MISSED) and benchmarks/results/usage-scale.json.
   The CPU other processes took meanwhile is reported: the machine is shared.
"""

from __future__ import annotations

import argparse
import html
import http.client
import io
import json
import os
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from harness import usage_setup
from harness.base import BENCH_DIR, HOST, log
from harness.machine import CpuWindow, service_pids
from harness.procs import Procs, free_port
from harness.seed import CHAT_PROVIDER, config_toml
from harness.servers import start_gateway
from harness.usage_setup import MODELS

usage_setup.django()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402
from django.test import Client  # noqa: E402

from gateway.models import CatalogModel  # noqa: E402
from harness import usage_records  # noqa: E402
from usage.log import Cursor  # noqa: E402
from usage.models import UsageDaily, UsageHourly, UsageRecord  # noqa: E402
from usage.services import usage_rollup  # noqa: E402

RESULTS = BENCH_DIR / "results" / "usage-scale.json"
PAGE_TARGET_MS = 300.0
EXPORT_RSS_TARGET_MB = 50.0
WARMUPS = 2
# USD per million tokens: input, cached input, output (a mini, a large model…).
PRICES = [
    ("0.15", "0.075", "0.60"),
    ("2.50", "1.25", "10.00"),
    ("0.40", "0.10", "1.60"),
    ("1.10", "0.275", "4.40"),
    ("3.00", "0.30", "15.00"),
    ("0.27", "0.07", "1.10"),
]
ROW_LINK = re.compile(rb'href="/usage/requests/pb-')
USAGE_TABLE = b'<table class="usage-table">'
ATTEMPT_ROW = re.compile(rb"<tr><td>\d+</td>")
OLDER_LINK = re.compile(rb'<a class="btn btn-sm" href="([^"]+)"[^>]*rel="next"')


@dataclass
class Fetched:
    status: int
    ttfb_ms: float
    total_ms: float
    size: int
    body: bytes = b""
    lines: int = 0


@dataclass
class Page:
    name: str
    path: str
    group: str  # "usage" or "log": the 300 ms target
    htmx: bool = False
    least_rows: int = 0  # log pages: rows the page must list
    marker: bytes = b""  # what the page holds once it rendered its figures
    counted: re.Pattern[bytes] = ROW_LINK  # its rows
    runs_ms: list[float] = field(default_factory=list)
    size: int = 0
    rows: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.runs_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class Browser:
    """One signed-in keep-alive connection to the web server."""

    def __init__(self, port: int, session: str) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=600)
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={session}"

    def get(self, path: str, *, htmx: bool = False, keep: bool = True) -> Fetched:
        headers = {"Cookie": self.cookie}
        if htmx:
            headers["HX-Request"] = "true"
        started = time.perf_counter()
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        ttfb = time.perf_counter() - started
        body, size, lines = [], 0, 0
        while chunk := response.read(65536):
            size += len(chunk)
            lines += chunk.count(b"\n")
            if keep:
                body.append(chunk)
        total = time.perf_counter() - started
        return Fetched(response.status, ttfb * 1000, total * 1000, size, b"".join(body), lines)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def prepare(records: int, days: int, work: Path) -> tuple[dict, dict]:
    """The account, its keys and models, the records and the rollups: (the
    account's figures, the seconds each step took)."""
    account, keys = usage_setup.bench_account("bench-usage@example.com")
    config = work / "usage-scale.toml"
    routes = {model: (f"upstream-{model}", CHAT_PROVIDER) for model in MODELS}
    config.write_text(config_toml(free_port(), routes))
    call_command("loadconfig", str(config), stdout=io.StringIO())
    for model, (price_in, price_cached, price_out) in zip(MODELS, PRICES, strict=True):
        CatalogModel.objects.filter(public_id=model).update(
            input_per_mtok=Decimal(price_in),
            cached_input_per_mtok=Decimal(price_cached),
            output_per_mtok=Decimal(price_out),
        )
    now = datetime.now(UTC)
    log(f"seeding {records:,} records over {days} days")
    took = usage_records.seed(
        account_id=account.id,
        key_ids=[key.id for key in keys],
        models=MODELS,
        provider=CHAT_PROVIDER,
        count=records,
        days=days,
        end=now,
        progress=log,
    )
    log(f"  written in {took['insert_s']:.0f} s, indexed in {took['indexes_s']:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {UsageRecord._meta.db_table}")
    started = time.monotonic()
    usage_rollup()
    took["rollup_s"] = time.monotonic() - started
    log(f"rollup (usage_rollup, one run over every record) {took['rollup_s']:.0f} s")
    started = time.monotonic()
    with connection.cursor() as cursor:
        for model in (UsageRecord, UsageHourly, UsageDaily):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    took["vacuum_analyze_s"] = time.monotonic() - started
    _check_rollups(account)
    figures = {
        "account": account,
        "keys": keys,
        "now": now,
        "records": UsageRecord.objects.filter(account=account).count(),
        "hourly_rows": UsageHourly.objects.filter(account=account).count(),
        "daily_rows": UsageDaily.objects.filter(account=account).count(),
    }
    log(
        f"{figures['records']:,} records, {figures['hourly_rows']:,} hourly and "
        f"{figures['daily_rows']:,} daily rollup rows"
    )
    return figures, took


def _check_rollups(account) -> None:
    """The daily rows add up to the records (what the usage page shows is them)."""
    raw = UsageRecord.objects.filter(account=account).aggregate(n=Count("id"), c=Sum("cost_usd"))
    daily = UsageDaily.objects.filter(account=account).aggregate(
        n=Sum("requests"), c=Sum("cost_usd")
    )
    if (raw["n"], raw["c"]) != (daily["n"], daily["c"]):
        raise RuntimeError(f"the daily rollup differs from the records: {daily} != {raw}")
    log(f"the daily rollup adds up to the records: {raw['n']:,} requests, ${raw['c']:,.2f}")


def pages(figures: dict) -> list[Page]:
    """What is timed: the usage page's views and the log's pages."""
    today = figures["now"].astimezone(ZoneInfo(usage_setup.ZONE)).date()
    busiest, quietest = figures["keys"][0].id, figures["keys"][-1].id
    found = _sought(figures)
    custom = {"range": "custom", "start": today - timedelta(days=89), "end": today}
    ranges = [
        ("24h", {"range": "24h"}),
        ("7 days", {"range": "7d"}),
        ("30 days", {"range": "30d"}),
        ("last month", {"range": "last-month"}),
        ("custom 90 days", custom),
    ]
    usage = [(f"{name}, by {g}", {**q, "group": g}) for name, q in ranges for g in ("key", "model")]
    usage += [
        ("30 days, one key, by model", {"range": "30d", "group": "model", "key": busiest}),
        ("custom 90 days, one key", {**custom, "key": busiest}),
    ]
    # name, query, rows it must list (a small seed has fewer than a page of some)
    log_pages: list[tuple[str, dict, int]] = [
        ("first page", {}, 50),
        ("80 days back (an Older cursor)", {"cursor": found["cursor_80d"]}, 50),
        ("date range ending 80 days ago", {"until": today - timedelta(days=80)}, 50),
        ("busiest key", {"key": busiest}, 1),
        ("quietest key", {"key": quietest}, 1),
        ("rarest model", {"model": MODELS[-1]}, 1),
        ("status 5xx", {"status": "5xx"}, 1),
        ("quietest key, 5xx", {"key": quietest, "status": "5xx"}, 1),
        ("estimated", {"estimated": "yes"}, 1),
        ("search: request id", {"q": found["request_id"]}, 1),
        ("search: upstream id", {"q": found["upstream_request_id"]}, 1),
        ("search: client id", {"q": found["client_request_id"]}, 1),
    ]
    listed = [
        Page(f"usage {n}", f"/usage/?{urlencode(q)}", "usage", marker=USAGE_TABLE) for n, q in usage
    ]
    listed.append(
        Page(
            "usage 30 days by model (htmx partial)",
            listed[5].path,
            "usage",
            htmx=True,
            marker=USAGE_TABLE,
        )
    )
    listed += [
        Page(f"log {n}", f"/usage/requests/?{urlencode(q)}", "log", least_rows=r)
        for n, q, r in log_pages
    ]
    listed.append(
        Page("log first page (htmx partial)", "/usage/requests/", "log", htmx=True, least_rows=50)
    )
    detail = f"/usage/requests/{found['failed']}/"
    listed.append(
        Page("request page (two attempts)", detail, "log", least_rows=2, counted=ATTEMPT_ROW)
    )
    return listed


def _sought(figures: dict) -> dict:
    """Ids a support ticket would quote, from a record 45 days old; the cursor
    an Older link 80 days back holds; a failed request's id."""
    records = UsageRecord.objects.filter(account=figures["account"]).order_by("-created_at")
    middle = figures["now"] - timedelta(days=45)
    quoted = (
        records.filter(created_at__lte=middle)
        .exclude(upstream_request_id="")
        .exclude(client_request_id="")
        .first()
    )
    deep = records.filter(created_at__lte=figures["now"] - timedelta(days=80)).first()
    failed = records.filter(created_at__lte=middle, status__gte=500).first()
    assert quoted and deep and failed, "the seed lacks the records sought"
    return {
        "request_id": quoted.request_id,
        "upstream_request_id": quoted.upstream_request_id,
        "client_request_id": quoted.client_request_id,
        "cursor_80d": Cursor.at(deep, older=True).encode(),
        "failed": failed.request_id,
    }


def time_pages(browser: Browser, listed: list[Page], runs: int) -> list[Page]:
    """Each page timed, in order; the first page of the log is followed by the
    page its Older link leads to."""
    timed = []
    for page in listed:
        body = time_page(browser, page, runs)
        timed.append(page)
        if page.name == "log first page":
            older = OLDER_LINK.search(body)
            if older is None:
                raise RuntimeError("the log's first page has no Older link")
            second = Page(
                "log page 2 (its Older link)",
                html.unescape(older[1].decode()),
                "log",
                least_rows=50,
            )
            time_page(browser, second, runs)
            timed.append(second)
    return timed


def time_page(browser: Browser, page: Page, runs: int) -> bytes:
    """`runs` timed fetches after the warm-ups; the last body, checked."""
    for run in range(WARMUPS + runs):
        fetched = browser.get(page.path, htmx=page.htmx)
        if fetched.status != 200:
            raise RuntimeError(f"{page.name}: {page.path} answered {fetched.status}")
        if run >= WARMUPS:
            page.runs_ms.append(fetched.total_ms)
    page.size, page.rows = fetched.size, len(page.counted.findall(fetched.body))
    if page.rows < page.least_rows or page.marker not in fetched.body:
        raise RuntimeError(f"{page.name}: {page.rows} rows (or no figures), {fetched.body[:300]!r}")
    log(f"{page.name}: median {page.median_ms:.1f} ms, p95 {page.p95_ms:.1f} ms")
    return fetched.body


def export(browser: Browser, worker: int, name: str, path: str) -> dict:
    """One download, the worker's VmRSS sampled every 50 ms meanwhile."""
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append(rss_kb(worker))

    before = rss_kb(worker)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fetched = browser.get(path, keep=False)
    finally:
        done.set()
        sampler.join()
    after = rss_kb(worker)
    peak = max([before, after, *samples])
    if fetched.status != 200:
        raise RuntimeError(f"{name}: {path} answered {fetched.status}")
    result = {
        "name": name,
        "path": path,
        "ttfb_ms": round(fetched.ttfb_ms, 1),
        "total_s": round(fetched.total_ms / 1000, 2),
        "bytes": fetched.size,
        "rows": fetched.lines - 1,  # the header; no cell of these holds a line break
        "rss_before_mb": round(before / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "rss_growth_mb": round((peak - before) / 1024, 1),
        "rss_samples": len(samples),
    }
    log(
        f"{name}: first byte {result['ttfb_ms']} ms, {result['total_s']} s, "
        f"{result['rows']:,} rows, {result['bytes'] / 1e6:.1f} MB, "
        f"RSS +{result['rss_growth_mb']} MB (peak {result['rss_peak_mb']} MB)"
    )
    return result


def exports(browser: Browser, worker: int, today: date) -> list[dict]:
    month = {"since": today - timedelta(days=29), "until": today}
    custom = {"range": "custom", "start": today - timedelta(days=89), "end": today}
    return [
        export(
            browser, worker, "log CSV, 30 days", "/usage/requests/export.csv?" + urlencode(month)
        ),
        export(
            browser, worker, "usage table CSV, 30 days", "/usage/export.csv?range=30d&group=key"
        ),
        export(
            browser, worker, "usage table CSV, 90 days", "/usage/export.csv?" + urlencode(custom)
        ),
    ]


def noise(window: dict) -> dict:
    return {
        "wall_s": round(window["wall_s"], 1),
        "machine_busy_pct": round(window["machine_busy_pct"], 1),
        "other_processes_pct_of_machine": round(window["other"]["pct_of_machine"], 1),
        "web_worker_cpu_s": round(window["web"]["cpu_ms"] / 1000, 1),
        "postgres_redis_cpu_s": round(window["services"]["cpu_ms"] / 1000, 1),
    }


def measure(figures: dict, runs: int, work: Path) -> dict:
    user = figures["account"].users.get()
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    procs = Procs()
    try:
        _, workers = start_gateway(
            procs,
            app="purebridge.asgi:application",
            workers=1,
            port=(port := free_port()),
            log_path=work / "gunicorn.log",
            cpus=None,
        )
        browser = Browser(port, session)
        groups = {"web": lambda: workers, "services": service_pids, "bench": lambda: [os.getpid()]}
        window = CpuWindow(groups)
        window.start()
        listed = time_pages(browser, pages(figures), runs)
        pages_noise = noise(window.stop())
        window.start()
        today = figures["now"].astimezone(ZoneInfo(usage_setup.ZONE)).date()
        downloads = exports(browser, workers[0], today)
        exports_noise = noise(window.stop())
    except BaseException:
        procs.print_log_tails()
        raise
    finally:
        procs.stop_all()
    return {
        "pages": [
            {
                "name": page.name,
                "group": page.group,
                "path": page.path,
                "median_ms": round(page.median_ms, 1),
                "p95_ms": round(page.p95_ms, 1),
                "bytes": page.size,
                "rows": page.rows,
                "runs_ms": [round(ms, 1) for ms in page.runs_ms],
            }
            for page in listed
        ],
        "exports": downloads,
        "noise": {"pages": pages_noise, "exports": exports_noise},
    }


def targets(measured: dict) -> list[dict]:
    checked = [
        {
            "target": f"{page['name']}: p95 < {PAGE_TARGET_MS:.0f} ms",
            "value": page["p95_ms"],
            "met": page["p95_ms"] < PAGE_TARGET_MS,
        }
        for page in measured["pages"]
    ]
    log_csv = measured["exports"][0]
    checked.append(
        {
            "target": f"{log_csv['name']}: worker RSS growth < {EXPORT_RSS_TARGET_MB:.0f} MB",
            "value": log_csv["rss_growth_mb"],
            "met": log_csv["rss_growth_mb"] < EXPORT_RSS_TARGET_MB,
        }
    )
    return checked


def report(results: dict) -> None:
    print()
    print(f"{'page':<44} {'median ms':>10} {'p95 ms':>8} {'KB':>7} {'rows':>5}")
    for page in results["pages"]:
        print(
            f"{page['name']:<44} {page['median_ms']:>10.1f} {page['p95_ms']:>8.1f} "
            f"{page['bytes'] / 1024:>7.0f} {page['rows'] if page['group'] == 'log' else '':>5}"
        )
    print()
    print(
        f"{'export':<28} {'1st byte ms':>11} {'total s':>8} {'rows':>10} {'MB':>7} {'RSS +MB':>8}"
    )
    for row in results["exports"]:
        print(
            f"{row['name']:<28} {row['ttfb_ms']:>11.1f} {row['total_s']:>8.1f} "
            f"{row['rows']:>10,} {row['bytes'] / 1e6:>7.1f} {row['rss_growth_mb']:>8.1f}"
        )
    print()
    for stage, figures in results["noise"].items():
        print(
            f"machine during the {stage}: {figures['machine_busy_pct']}% busy, other processes "
            f"{figures['other_processes_pct_of_machine']}% of it"
        )
    print()
    for target in results["targets"]:
        print(f"{'met   ' if target['met'] else 'MISSED'} {target['target']} ({target['value']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each page")
    args = parser.parse_args()
    if args.days <= 80:
        parser.error("--days must be more than 80: a page of the log is 80 days back")
    with tempfile.TemporaryDirectory(prefix="usage-scale-") as work:
        figures, took = prepare(args.records, args.days, Path(work))
        measured = measure(figures, args.runs, Path(work))
    results = {
        "when": figures["now"].isoformat(),
        "records": figures["records"],
        "days": args.days,
        "keys": len(figures["keys"]),
        "models": len(MODELS),
        "hourly_rows": figures["hourly_rows"],
        "daily_rows": figures["daily_rows"],
        "seed_s": {name: round(seconds, 1) for name, seconds in took.items()},
        "runs_per_page": args.runs,
        **measured,
    }
    results["targets"] = targets(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    report(results)
    log(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
