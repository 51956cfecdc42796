"""nonstream-c1 and nonstream-c64: chat completions answered whole, one at a time
and 64 in flight."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import fmt
from harness.family import Family, Warmup
from harness.report import Table, check, gateway_vs_direct
from harness.seed import CHAT_PROVIDER

if TYPE_CHECKING:
    from harness.bench import Bench, Counts

UPSTREAM = "fake?tokens=16"
MODEL = "bench-chat"
CHAT = Ask("chat", MODEL)  # with the key --limited-key says
LIMITED = Ask("limits", MODEL, key="limited")
TARGETS = {"gateway_cpu_ms_per_request": 1.5, "added_p50_c1_ms": 2.0}


def c64_load(counts: Counts) -> dict:
    """64 in flight: nonstream-c64, and admission-c64 with the key with limits."""
    # settle_s: usage records are written by a thread every 0.2 s; its last batch counts.
    return {
        "stream": False,
        "concurrency": 64,
        "requests": counts.c64,
        "warmup": 256,
        "settle_s": 0.6,
    }


def run(bench: Bench) -> None:
    c1 = {"stream": False, "concurrency": 1, "requests": bench.counts.c1, "warmup": 50}
    bench.pair("nonstream-c1", [CHAT], **c1, profile=True)
    bench.pair("nonstream-c64", [CHAT], **c64_load(bench.counts), profile=True)


def summarise(r: dict) -> dict:
    gw, direct = r["nonstream-c64/gateway"], r["nonstream-c64/direct"]
    return {
        "nonstream_c1": gateway_vs_direct(r, "nonstream-c1"),
        "nonstream_c64": {
            **gateway_vs_direct(r, "nonstream-c64"),
            "gateway_rps": gw["throughput_rps"],
            "direct_rps": direct["throughput_rps"],
            "gateway_cpu_ms_per_request": gw["gateway_cpu_ms_per_request"],
            "fake_cpu_ms_per_request_via_gateway": gw["fake_cpu_ms_per_request"],
            "fake_cpu_ms_per_request_direct": direct["fake_cpu_ms_per_request"],
            "loadgen_cpu_ms_per_request_via_gateway": gw["loadgen_cpu_ms_per_request"],
            "postgres_redis_cpu_ms_per_request_via_gateway": gw[
                "postgres_redis_cpu_ms_per_request"
            ],
            "machine_busy_pct_gateway": gw["cpu"]["machine_busy_pct"],
            "busiest_worker_share_pct": gw["busiest_worker_share_pct"],
            "failures": gw["failures"] + direct["failures"],
        },
    }


def targets(s: dict) -> dict:
    return {
        "gateway_cpu_ms_per_request": check(
            s["nonstream_c64"]["gateway_cpu_ms_per_request"],
            TARGETS["gateway_cpu_ms_per_request"],
        ),
        "added_p50_c1_ms": check(s["nonstream_c1"]["added_p50_ms"], TARGETS["added_p50_c1_ms"]),
    }


def rows(t: Table, s: dict) -> None:
    c1, c64 = s["nonstream_c1"], s["nonstream_c64"]
    t.row("non-streaming, c=1 (ms)")
    t.percentiles("latency", c1, goal=t.goal("added_p50_c1_ms", "added <="))
    t.row("non-streaming, c=64 (ms)")
    t.percentiles("latency", c64)
    t.row("  throughput (req/s)", fmt(c64["gateway_rps"], 0), fmt(c64["direct_rps"], 0))
    t.row(
        "  web worker CPU per request (ms)",
        fmt(c64["gateway_cpu_ms_per_request"], 3),
        target=t.goal("gateway_cpu_ms_per_request", "<="),
    )
    t.row(
        "  fake upstream CPU per request (ms)",
        fmt(c64["fake_cpu_ms_per_request_via_gateway"], 3),
        fmt(c64["fake_cpu_ms_per_request_direct"], 3),
    )
    t.row(
        "  PostgreSQL+Redis CPU per request (ms)",
        fmt(c64["postgres_redis_cpu_ms_per_request_via_gateway"], 3),
    )
    t.busiest_worker(c64["busiest_worker_share_pct"])


FAMILY = Family(
    name="nonstream",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    models={MODEL: (UPSTREAM, CHAT_PROVIDER)},
    # Both keys, whichever --limited-key makes the phases send with.
    warmups=(Warmup("warmup", (CHAT, LIMITED)),),
)
