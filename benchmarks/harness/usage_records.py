"""Millions of usage records for one account, written by PostgreSQL itself
(benchmarks/usage_scale.py).

One `INSERT … SELECT … FROM generate_series` per chunk: the rows are made in
the server, so Python costs nothing per row (the usage writer's COPY spends
~22 µs of Python per row, ~2 minutes for 5 million). The records table's
secondary indexes and its unique and foreign-key constraints are dropped for
the load and made again after it from their own definitions, read from the
catalogue first (pg_get_indexdef, pg_get_constraintdef): building an index
once over sorted rows is several times faster than inserting 5 million
entries into ten of them, and a deferred foreign key would queue a check per
row until the commit.

The spread (seeded, so two runs write the same records):
- times evenly over the days, oldest first (the table's order on disk is the
  order a live server writes it in); created_at = recorded_at;
- keys skewed (key-0 ~22 % of the records, key-19 ~2.5 %), models weighted
  35/25/15/12/8/5 %;
- status 200 95.5 %; 429 refused by PureBridge (no attempt, no upstream)
  1.5 %; 400 from the upstream 1 %; 499 client left 0.5 % (tokens
  estimated); 5xx 1.5 % (502, 504, 500; two attempts each);
- 60 % streamed, with a time to first token when tokens came;
- 1 % of the answered records estimated (the upstream reported no usage);
- the upstream's request id on 80 % of those that reached it, the client's
  on 30 % of all;
- tokens and latency long-tailed, a third of the prompts partly cached,
  model-3 a reasoning model; the cost exact, from the catalogue's prices.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection, transaction

from gateway.models import CatalogModel
from usage.models import UsageRecord

TABLE = UsageRecord._meta.db_table
CHUNKS = 10
SEED = 0.4242
MODEL_SHARES = (0.35, 0.60, 0.75, 0.87, 0.95)  # cumulative: model-0 … model-5
REASONING_MODEL = 4  # model-3, 1-based in SQL arrays

INSERT = f"""
INSERT INTO {TABLE} (
    created_at, recorded_at, account_id, api_key_id, endpoint, model, provider,
    upstream_model, stream, prompt_tokens, cached_tokens, cache_write_tokens,
    completion_tokens, reasoning_tokens, estimated, estimate_reason, cost_usd, status,
    error_type, latency_ms, ttft_ms, request_id, upstream_request_id, client_request_id,
    attempts
)
SELECT at, at, %(account)s, key_id, endpoint, model, provider, upstream_model, stream,
       prompt, cached, 0, completion, reasoning, estimated, estimate_reason,
       round(((prompt - cached) * price_in + cached * price_cached
              + completion * price_out) / 1000000, 12),
       status, error_type, latency, ttft,
       'pb-' || substr(md5(i::text || 'request'), 1, 24),
       CASE WHEN reached AND r_ids < 0.8 THEN 'req_' || md5(i::text || 'upstream') ELSE '' END,
       CASE WHEN r_client < 0.3
            THEN regexp_replace(md5(i::text || 'client'),
                                '(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})', '\\1-\\2-\\3-\\4-\\5')
            ELSE '' END,
       CASE WHEN NOT reached THEN '[]'::jsonb
            WHEN status >= 500 THEN jsonb_build_array(
                jsonb_build_object('provider', provider, 'upstream_model', upstream_model,
                                   'status', status, 'error', error_type, 'ms', latency / 2),
                jsonb_build_object('provider', provider, 'upstream_model', upstream_model,
                                   'status', status, 'error', error_type,
                                   'ms', latency - latency / 2))
            ELSE jsonb_build_array(
                jsonb_build_object('provider', provider, 'upstream_model', upstream_model,
                                   'status', status, 'error', error_type, 'ms', latency))
       END
FROM (
    SELECT *,
           CASE WHEN answered THEN floor(150 + 12000 * r_prompt ^ 3)::int ELSE 0 END AS prompt,
           CASE WHEN answered THEN floor(10 + 2000 * r_completion ^ 2)::int ELSE 0 END
               AS completion,
           status = 499 OR (status = 200 AND r_estimated < 0.01) AS estimated,
           CASE WHEN status = 499 THEN 'usage_missing:client_left'
                WHEN status = 200 AND r_estimated < 0.01 THEN 'usage_missing'
                ELSE '' END AS estimate_reason,
           CASE status WHEN 429 THEN 'rate_limit_exceeded'
                       WHEN 400 THEN 'invalid_request_error'
                       WHEN 499 THEN 'client_disconnected'
                       WHEN 502 THEN 'upstream_error'
                       WHEN 504 THEN 'upstream_timeout'
                       WHEN 500 THEN 'server_error'
                       ELSE '' END AS error_type,
           CASE WHEN reached THEN %(provider)s ELSE '' END AS provider,
           CASE WHEN reached THEN 'upstream-' || model ELSE '' END AS upstream_model,
           CASE WHEN status = 429 THEN floor(1 + 4 * r_latency)::int
                WHEN status = 504 THEN floor(60000 + 5000 * r_latency)::int
                ELSE floor(250 + 30000 * r_latency ^ 3)::int END AS latency
    FROM (
        SELECT *, status IN (200, 499) AS answered, status <> 429 AS reached,
               (%(models)s::text[])[m] AS model
        FROM (
            SELECT i, r_ids, r_client, r_prompt, r_completion, r_estimated, r_latency,
                   %(start)s::timestamptz + %(step)s::interval * (i - 1 + r_at) AS at,
                   (%(keys)s::bigint[])[1 + floor(20 * r_key ^ 2)::int] AS key_id,
                   1 + width_bucket(r_model, %(shares)s::float8[]) AS m,
                   CASE WHEN r_endpoint < 0.85 THEN 'chat.completions'
                        WHEN r_endpoint < 0.95 THEN 'responses'
                        ELSE 'messages' END AS endpoint,
                   CASE WHEN r_status < 0.955 THEN 200 WHEN r_status < 0.970 THEN 429
                        WHEN r_status < 0.980 THEN 400 WHEN r_status < 0.985 THEN 499
                        WHEN r_status < 0.992 THEN 502 WHEN r_status < 0.997 THEN 504
                        ELSE 500 END AS status,
                   r_stream < 0.6 AS stream, r_cached, r_ttft
            FROM (
                SELECT i, random() AS r_at, random() AS r_key, random() AS r_model,
                       random() AS r_endpoint, random() AS r_status, random() AS r_stream,
                       random() AS r_prompt, random() AS r_cached, random() AS r_completion,
                       random() AS r_latency, random() AS r_ttft, random() AS r_ids,
                       random() AS r_client, random() AS r_estimated
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
            ) draws
        ) shaped
    ) reached
) tokens
CROSS JOIN LATERAL (
    SELECT (%(price_in)s::numeric[])[m] AS price_in,
           (%(price_cached)s::numeric[])[m] AS price_cached,
           (%(price_out)s::numeric[])[m] AS price_out,
           CASE WHEN r_cached < 0.35 THEN floor(prompt * r_cached / 0.35 * 0.9)::int
                ELSE 0 END AS cached,
           CASE WHEN m = {REASONING_MODEL}
                THEN floor(completion * (0.3 + 0.5 * r_cached))::int ELSE 0 END AS reasoning,
           CASE WHEN stream AND answered THEN floor(120 + 0.1 * latency * r_ttft)::int
                END AS ttft
) priced
"""


def seed(
    *,
    account_id: int,
    key_ids: list[int],
    models: list[str],
    provider: str,
    count: int,
    days: int,
    end: datetime,
    progress: Callable[[str], None],
) -> dict[str, float]:
    """Write `count` records over the `days` before `end`; the seconds each step took."""
    prices = {m.public_id: m for m in CatalogModel.objects.filter(public_id__in=models)}
    params = {
        "account": account_id,
        "keys": key_ids,
        "models": models,
        "shares": list(MODEL_SHARES),
        "price_in": [prices[m].input_per_mtok for m in models],
        "price_cached": [prices[m].cached_input_per_mtok for m in models],
        "price_out": [prices[m].output_per_mtok for m in models],
        "provider": provider,
        "start": end - timedelta(days=days),
        "step": timedelta(days=days) / count,
    }
    took: dict[str, float] = {}
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        definitions = _secondary_definitions(cursor)
        for name, _ in definitions["constraints"]:
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
        for name, _ in definitions["indexes"]:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SELECT setseed(%s)", [SEED])
        per_chunk = -(-count // CHUNKS)
        for first in range(1, count + 1, per_chunk):
            last = min(first + per_chunk - 1, count)
            cursor.execute(INSERT, {**params, "first": first, "last": last})
            progress(f"  {last:,} records written ({time.monotonic() - started:.0f} s)")
        took["insert_s"] = time.monotonic() - started
        started = time.monotonic()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in definitions["indexes"]:
            cursor.execute(definition)
        for name, definition in definitions["constraints"]:
            cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute("RESET maintenance_work_mem")
        if _secondary_definitions(cursor) != definitions:
            raise RuntimeError("the records table's indexes were not all made again")
        took["indexes_s"] = time.monotonic() - started
    return took


def _secondary_definitions(cursor) -> dict[str, list[tuple[str, str]]]:
    """The table's unique and foreign-key constraints, and its indexes that
    belong to no constraint (the primary key stays)."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname",
        [TABLE],
    )
    constraints = [tuple(row) for row in cursor.fetchall()]
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname",
        [TABLE],
    )
    return {"constraints": constraints, "indexes": [tuple(row) for row in cursor.fetchall()]}
