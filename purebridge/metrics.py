"""Prometheus metrics, counted in the web worker and served at /metrics.

Off unless PUREBRIDGE_METRICS is set: every function here then returns at
its first line. On, each event is counted where it is known, once: a request
(its route, model, provider and status, its latency, time to first token
and the time PureBridge added, and its upstream attempts) when its usage
record is settled (gateway/accounting.py), an admission verdict where it is
reached (gateway/limits.py), the usage writer's backlog and failed writes in
its thread (usage/recorder.py). Counting is a memory write, never a network
call.

Under gunicorn, each worker counts on its own: with PROMETHEUS_MULTIPROC_DIR
set (gunicorn.conf.py makes a fresh one when metrics are on) prometheus_client
keeps the values in memory-mapped files there, and whichever worker answers
a scrape adds up every worker's files. A single process (`make run`) keeps
them in its own memory.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
CONTENT_TYPE = CONTENT_TYPE_LATEST

# From a cached refusal (milliseconds) to a reasoning model's long answer (minutes).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
)  # fmt: skip
# PureBridge's own share: tens of microseconds to what a stalled database costs.
ADDED_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
)  # fmt: skip

REQUESTS = Counter(
    "purebridge_requests",
    "Requests to /v1 by route, public model, provider (of the last attempt) and status.",
    ["route", "model", "provider", "status"],
)
LATENCY = Histogram(
    "purebridge_request_duration_seconds",
    "From a request's arrival to its last byte.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
TTFT = Histogram(
    "purebridge_time_to_first_token_seconds",
    "From a streamed request's arrival to its first chunk sent to the client.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
ADDED = Histogram(
    "purebridge_gateway_added_seconds",
    "Time to the client's first byte not spent waiting on upstreams (requests that reached one).",
    ["route"],
    buckets=ADDED_BUCKETS,
)
ATTEMPTS = Counter(
    "purebridge_upstream_attempts",
    "Upstream attempts by provider and the status it answered (or PureBridge's: 504 a timeout).",
    ["provider", "status"],
)
FAILOVERS = Counter(
    "purebridge_upstream_failovers",
    "Attempts after a request's first, by the provider moved on from.",
    ["provider"],
)
ADMISSIONS = Counter(
    "purebridge_admissions",
    "Admission outcomes: ok, rpm, tpm, budget, balance, unavailable.",
    ["outcome"],
)
USAGE_BACKLOG = Gauge(
    "purebridge_usage_queue_depth",
    "Usage records waiting for the database, summed over live workers.",
    multiprocess_mode="livesum",
)
USAGE_WRITE_FAILURES = Counter(
    "purebridge_usage_write_failures",
    "Failed writes of usage records: unreachable (the batch is retried) or refused.",
    ["reason"],
)
DEPENDENCY_UP = Gauge(
    "purebridge_dependency_up",
    "1 if the dependency answered the last health check (at most a second old), else 0.",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)


_children: dict[tuple, Any] = {}


def _child(metric: Any, *labels: object) -> Any:
    """metric.labels(*labels), remembered: a dict lookup instead of the
    library's locked lookup and label checks (~1 µs) on every request."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def request_settled(
    *,
    route: str,
    model: str,
    provider: str,
    status: int,
    stream: bool,
    latency: float,
    first_byte: float | None,
    upstream: float,
    attempts: list[dict],
) -> None:
    """One finished /v1 request. In seconds from its arrival: `latency` to its
    end, `first_byte` to the first byte of its answer (None: none was sent);
    `upstream` the time spent in its attempts."""
    if not settings.PUREBRIDGE_METRICS:
        return
    _child(REQUESTS, route, model, provider, status).inc()
    _child(LATENCY, route).observe(latency)
    if stream and first_byte is not None:
        _child(TTFT, route).observe(first_byte)
    if attempts:
        # Up to the client's first byte (or the end, for an answer never
        # started): after it a stream's pace is the upstream's.
        reached = first_byte if first_byte is not None else latency
        _child(ADDED, route).observe(max(reached - upstream, 0.0))
        for attempt in attempts:
            _child(ATTEMPTS, attempt["provider"], attempt["status"]).inc()
        for attempt in attempts[:-1]:
            _child(FAILOVERS, attempt["provider"]).inc()


def admission(outcome: str) -> None:
    if settings.PUREBRIDGE_METRICS:
        _child(ADMISSIONS, outcome).inc()


def usage_backlog(waiting: int) -> None:
    if settings.PUREBRIDGE_METRICS:
        USAGE_BACKLOG.set(waiting)


def usage_write_failed(reason: str) -> None:
    if settings.PUREBRIDGE_METRICS:
        USAGE_WRITE_FAILURES.labels(reason).inc()


def dependencies(health: dict) -> None:
    """Reachability as the last /health check found it (gateway/views.py)."""
    DEPENDENCY_UP.labels("database").set(1 if health.get("database") == "ok" else 0)
    redis = health.get("redis")
    if redis not in (None, "disabled"):
        DEPENDENCY_UP.labels("redis").set(1 if redis == "ok" else 0)


def exposition() -> bytes:
    """Every worker's metrics in the text format (reads files: call off the event loop)."""
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)
