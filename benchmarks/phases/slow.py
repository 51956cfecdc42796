"""slow-streams and slow-burst: 1,000 slow streams (~1 s each) open together,
opened over SLOW_RAMP_S and then all at once: completed, total time, worker PSS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import diff, fmt, signed
from harness.family import Family
from harness.report import Table, check
from harness.seed import CHAT_PROVIDER

if TYPE_CHECKING:
    from harness.bench import Bench

UPSTREAM = "fake?tokens=20&interval_ms=50"
SLOW_RAMP_S = 0.5
SLOW = Ask("chat", "bench-slow")
TARGETS = {"slow_total_p50_ms": 1500.0, "slow_peak_pss_mb": 400.0}
PHASES = (("slow-streams", "slow_streams"), ("slow-burst", "slow_burst"))  # (phase, summary)


def run(bench: Bench) -> None:
    if bench.args.skip_slow_streams:
        return
    c = bench.counts
    # The client opens its streams spread over SLOW_RAMP_S (all of them are
    # still open together: each lasts ~1 s), then once more all at once.
    for name, ramp in (("slow-streams", SLOW_RAMP_S), ("slow-burst", 0.0)):
        bench.pair(
            name,
            [SLOW],
            stream=True,
            concurrency=c.slow,
            requests=c.slow,
            warmup=0,
            timeout_s=120,
            deadline_s=180,
            settle_s=0.6,
            sample_pss=True,
            ramp_s=ramp,
            profile=name == "slow-streams",
        )


def summarise(r: dict) -> dict:
    return {
        key: _summary(r[f"{name}/gateway"], r[f"{name}/direct"])
        for name, key in PHASES
        if f"{name}/gateway" in r
    }


def _summary(g: dict, d: dict) -> dict:
    return {
        "upstream": UPSTREAM,
        "ramp_s": g["ramp_s"],
        "streams": g["requests"],
        "completed": g["ok"],
        "failures": g["failures"],
        "failure_kinds": g["failure_kinds"],
        "peak_open_streams": g["peak_open_streams"],
        "peak_in_flight": g["peak_in_flight"],
        "direct_peak_in_flight": d["peak_in_flight"],
        "total_p50_ms": g["latency_ms"]["p50"],
        "total_p99_ms": g["latency_ms"]["p99"],
        "ttft_p50_ms": g["ttft_ms"]["p50"],
        "direct_completed": d["ok"],
        "direct_peak_open_streams": d["peak_open_streams"],
        "direct_total_p50_ms": d["latency_ms"]["p50"],
        "direct_total_p99_ms": d["latency_ms"]["p99"],
        "direct_ttft_p50_ms": d["ttft_ms"]["p50"],
        "peak_worker_pss_mb": g["pss"]["peak_mb"],
        "idle_worker_pss_mb": g["pss"]["idle_mb"],
        "pss_samples": g["pss"]["samples"],
        "gateway_cpu_ms_per_stream": g["gateway_cpu_ms_per_request"],
        "machine_busy_pct": g["cpu"]["machine_busy_pct"],
        "busiest_half_second": g.get("cpu_timeline"),
    }


def targets(s: dict) -> dict:
    slow = s.get("slow_streams")
    if not slow:
        return {}
    return {
        "slow_all_complete": {
            "value": slow["completed"],
            "target": slow["streams"],
            "met": slow["completed"] == slow["streams"],
        },
        "slow_total_p50_ms": check(slow["total_p50_ms"], TARGETS["slow_total_p50_ms"]),
        "slow_peak_pss_mb": check(slow["peak_worker_pss_mb"], TARGETS["slow_peak_pss_mb"]),
    }


def rows(t: Table, s: dict) -> None:
    for _, key in PHASES:
        if key in s:
            _rows(t, s[key], primary=key == "slow_streams")
    if "slow_streams" not in s:
        t.row("slow streams: skipped (--skip-slow-streams)")


def _rows(t: Table, slow: dict, primary: bool) -> None:
    how = f"opened over {slow['ramp_s']:g} s" if slow["ramp_s"] else "opened all at once"
    t.row(f"{slow['streams']} slow streams {how}, {slow['upstream']}")
    t.row(
        "  completed",
        f"{slow['completed']}/{slow['streams']}",
        f"{slow['direct_completed']}/{slow['streams']}",
        "",
        f"all: {t.mark('slow_all_complete')}" if primary else "",
    )
    t.row(
        "  peak requests in flight together",
        str(slow["peak_in_flight"]),
        str(slow["direct_peak_in_flight"]),
    )
    t.row(
        "  peak streams answered and open together",
        str(slow["peak_open_streams"]),
        str(slow["direct_peak_open_streams"]),
    )
    for label, k, target in (
        ("total p50", "total_p50_ms", "slow_total_p50_ms"),
        ("total p99", "total_p99_ms", None),
        ("TTFT p50", "ttft_p50_ms", None),
    ):
        t.row(
            f"  {label} (ms)",
            fmt(slow[k], 0),
            fmt(slow[f"direct_{k}"], 0),
            signed(diff(slow[k], slow[f"direct_{k}"]), 0),
            t.goal(target, "<=") if primary and target else "",
        )
    t.row(
        f"  peak web worker PSS (MB; {slow['idle_worker_pss_mb']:.0f} idle)",
        fmt(slow["peak_worker_pss_mb"], 1),
        "",
        "",
        t.goal("slow_peak_pss_mb", "<=", "MB") if primary else "",
    )
    t.row("  web worker CPU per stream (ms)", fmt(slow["gateway_cpu_ms_per_stream"], 3))
    busiest = slow.get("busiest_half_second") or {}
    if busiest:
        t.row(
            "  busiest 0.5 s: web workers / machine CPU (%)",
            f"{busiest['workers_pct_of_their_cores']:.0f} / {busiest['machine_busy_pct']:.0f}",
        )


FAMILY = Family(
    name="slow",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    models={SLOW.model: (UPSTREAM, CHAT_PROVIDER)},
)
