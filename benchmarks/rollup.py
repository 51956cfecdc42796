"""How long one run of the usage rollup (usage.services.usage_rollup, what the
`rollup_usage` Celery task runs every minute) takes at 1,000 requests a second.

    scripts/with-services.sh .venv/bin/python benchmarks/rollup.py [--minutes 5] [--rate 1000]

Migrates the throwaway database, makes one account (Asia/Tokyo) with 20 keys,
then, minute after minute: writes `rate` × 60 usage records dated over that
minute (through the usage writer's own COPY path, 500 a batch, as a web worker
would), spread over the keys and 6 models, and times one rollup run. Every
minute is in the same hour, so each run recomputes an hour that holds all the
records so far: the last run is the costliest. Ends by checking that the hourly
and daily rows equal the raw records summed.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from harness import usage_setup
from harness.usage_setup import MODELS

usage_setup.django()

from django.db import connection  # noqa: E402

from usage.recorder import UsageEntry, _write  # noqa: E402
from usage.services import usage_rollup  # noqa: E402

BATCH = 500


def seed_minute(keys: list, start: datetime, count: int, first_id: int) -> None:
    step = timedelta(minutes=1) / count
    for offset in range(0, count, BATCH):
        _write(
            [
                UsageEntry(
                    created_at=start + step * i,
                    request_id=f"pb-bench-{first_id + i}",
                    endpoint="chat.completions",
                    status=200 if i % 50 else 502,
                    account_id=keys[i % len(keys)].account_id,
                    api_key_id=keys[i % len(keys)].id,
                    model=MODELS[i % len(MODELS)],
                    stream=i % 2 == 0,
                    prompt_tokens=1000 + i % 97,
                    cached_tokens=i % 300,
                    completion_tokens=200 + i % 31,
                    reasoning_tokens=i % 17,
                    cost_usd=Decimal("0.000123456789") * (1 + i % 13),
                    latency_ms=400 + i % 200,
                    ttft_ms=None if i % 5 == 0 else 80 + i % 40,
                )
                for i in range(offset, min(offset + BATCH, count))
            ]
        )


MISMATCHES = """
SELECT count(*) FROM (
  SELECT account_id, api_key_id, model, {bucket} AS b, count(*) AS n, sum(cost_usd) AS c,
         sum(latency_ms) AS l, sum(coalesce(ttft_ms, 0)) AS t
  FROM usage_usagerecord r JOIN accounts_account a ON a.id = r.account_id
  GROUP BY 1, 2, 3, 4
) raw FULL JOIN {table} agg
  ON agg.account_id = raw.account_id AND agg.api_key_id = raw.api_key_id
 AND agg.model = raw.model AND agg.{column} = raw.b
WHERE raw.n IS DISTINCT FROM agg.requests OR raw.c IS DISTINCT FROM agg.cost_usd
   OR raw.l IS DISTINCT FROM agg.latency_ms_sum OR raw.t IS DISTINCT FROM agg.ttft_ms_sum
"""


def mismatches(table: str, column: str, bucket: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(MISMATCHES.format(table=table, column=column, bucket=bucket))
        return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--rate", type=int, default=1000, help="requests a second")
    args = parser.parse_args()
    _, keys = usage_setup.bench_account("bench-rollup@example.com")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    per_minute = args.rate * 60
    usage_rollup()  # the first run's watermark; nothing to fold yet
    print(f"{per_minute:,} records a minute ({args.rate:,}/s), 20 keys, 6 models")
    for minute in range(args.minutes):
        written = time.monotonic()
        seed_minute(keys, hour + timedelta(minutes=minute), per_minute, minute * per_minute)
        seeded = time.monotonic() - written
        # What autovacuum does on a live server: without statistics of the new
        # rows the planner guesses the hour holds none.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE usage_usagerecord")
        started = time.monotonic()
        hourly_rows = usage_rollup()
        took = time.monotonic() - started
        in_hour = (minute + 1) * per_minute
        print(
            f"minute {minute + 1}: written in {seeded:.1f} s; rollup run {took * 1000:.0f} ms "
            f"({hourly_rows} hourly rows, the hour holding {in_hour:,} records)"
        )
    hourly = mismatches("usage_usagehourly", "hour", "date_trunc('hour', r.created_at)")
    daily = mismatches("usage_usagedaily", "day", "(r.created_at AT TIME ZONE a.timezone)::date")
    print(f"rows differing from the raw records: hourly {hourly}, daily {daily}")
    if hourly or daily:
        sys.exit(1)


if __name__ == "__main__":
    main()
