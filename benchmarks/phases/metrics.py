"""metrics-c1: what counting Prometheus metrics costs a request: the run's
gateway (metrics off, as by default) against a second one started here with
PUREBRIDGE_METRICS=true (gunicorn.conf.py, multiprocess mode), alternating,
one request at a time, the same key and model (gateway only).

Both gateways run side by side for the phase, on the same PostgreSQL, Redis
and fake upstream; at c=1 only one of them has a request at a time. After
the phase, /metrics of the second is scraped once: it must count every
request it was sent, and how long the scrape took is reported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import HOST, fmt, log, signed
from harness.family import Family
from harness.procs import free_port, http_get
from harness.report import Table, ab, check
from harness.servers import start_gateway
from phases import nonstream

if TYPE_CHECKING:
    from harness.bench import Bench

OFF = Ask("metrics off", nonstream.MODEL, key="plain")
ON = Ask("metrics on", nonstream.MODEL, key="plain")  # its port is set when it starts
WARMUP = 50
TARGETS = {"metrics_added_p50_c1_ms": 0.1}


def run(bench: Bench) -> None:
    port = free_port()
    master, _ = start_gateway(
        bench.procs,
        app=bench.args.app,
        workers=bench.args.workers,
        port=port,
        log_path=bench.tmp / "gunicorn-metrics.log",
        cpus=bench.gateway_cpus,
        extra_env={"PUREBRIDGE_METRICS": "true"},
    )
    try:
        requests = 2 * bench.counts.c1
        bench.phase(
            "metrics-c1/gateway",
            "gateway",
            [OFF, replace(ON, port=port)],
            stream=False,
            concurrency=1,
            requests=requests,
            warmup=WARMUP,
        )
        bench.results["metrics-scrape"] = _scrape(port, sent=(requests + WARMUP) // 2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master.pid, signal.SIGTERM)
        master.wait(30)


def _scrape(port: int, sent: int) -> dict:
    """One scrape of the metrics-on gateway: how long it took, and whether it
    counted the requests it was sent (give or take the warm-up's last turn)."""
    from prometheus_client.parser import text_string_to_metric_families

    started = time.perf_counter()
    status, body = http_get(f"http://{HOST}:{port}/metrics", timeout=10)
    took_ms = (time.perf_counter() - started) * 1000
    counted = sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "purebridge_requests_total"
    )
    log(f"/metrics {status} in {took_ms:.1f} ms: {counted:.0f} requests counted, ~{sent} sent")
    return {"status": status, "ms": took_ms, "counted": counted, "sent": sent}


def summarise(r: dict) -> dict:
    scrape = r.get("metrics-scrape", {})
    return {
        "metrics_c1": {
            **ab(r["metrics-c1/gateway"], ON.label, OFF.label),
            "scrape_ms": scrape.get("ms"),
            "scrape_counted": scrape.get("counted"),
            "scrape_sent": scrape.get("sent"),
        }
    }


def targets(s: dict) -> dict:
    added = s["metrics_c1"]["added_p50_ms"]
    return {"metrics_added_p50_c1_ms": check(added, TARGETS["metrics_added_p50_c1_ms"])}


def rows(t: Table, s: dict) -> None:
    m = s["metrics_c1"]
    t.row("metrics, c=1: a gateway counting Prometheus metrics vs one not, alternating (ms)")
    for p in ("p50", "p99"):
        t.row(
            f"  latency {p}, metrics on",
            fmt(m[f"metrics_on_{p}_ms"]),
            "",
            signed(m[f"added_{p}_ms"]),
            t.goal("metrics_added_p50_c1_ms", "added <=") if p == "p50" else "",
        )
        t.row(f"  latency {p}, metrics off", fmt(m[f"metrics_off_{p}_ms"]))
    t.row(
        f"  one /metrics scrape (ms; {fmt(m['scrape_counted'], 0)} requests counted)",
        fmt(m["scrape_ms"]),
    )


FAMILY = Family(name="metrics", run=run, summarise=summarise, targets=targets, rows=rows)
