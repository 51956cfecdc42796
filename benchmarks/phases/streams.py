"""stream-c64: chat completions streamed, 64 streams open at a time: time to first content."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import fmt
from harness.family import Family, Warmup
from harness.report import Table, check, gateway_vs_direct
from harness.seed import CHAT_PROVIDER

if TYPE_CHECKING:
    from harness.bench import Bench, Counts

UPSTREAM = "fake?tokens=20&interval_ms=25"
RAMP_S = 0.5  # ~ the length of one UPSTREAM stream
STREAM = Ask("chat", "bench-stream")
TARGETS = {"added_ttft_p50_c64_ms": 5.0}


def streams_64(counts: Counts) -> dict:
    return {
        "stream": True,
        "concurrency": 64,
        "requests": counts.streams,
        "warmup": 64,
        "settle_s": 0.6,
        # Spread the first 64 over one stream's length: otherwise all 64 start,
        # end and start again together, in lock-step waves no real traffic has.
        "ramp_s": RAMP_S,
    }


def run(bench: Bench) -> None:
    bench.pair("stream-c64", [STREAM], **streams_64(bench.counts), profile=True)


def summarise(r: dict) -> dict:
    gw, direct = r["stream-c64/gateway"], r["stream-c64/direct"]
    return {
        "stream_c64": {
            "upstream": UPSTREAM,
            **gateway_vs_direct(r, "stream-c64", "ttft_ms", "ttft_"),
            "gateway_cpu_ms_per_stream": gw["gateway_cpu_ms_per_request"],
            "busiest_worker_share_pct": gw["busiest_worker_share_pct"],
            "failures": gw["failures"] + direct["failures"],
        }
    }


def targets(s: dict) -> dict:
    added = s["stream_c64"]["added_ttft_p50_ms"]
    return {"added_ttft_p50_c64_ms": check(added, TARGETS["added_ttft_p50_c64_ms"])}


def rows(t: Table, s: dict) -> None:
    st = s["stream_c64"]
    t.row(f"streaming, 64 streams, {st['upstream']} (ms)")
    t.percentiles("TTFT", st, "ttft_", goal=t.goal("added_ttft_p50_c64_ms", "added <="))
    t.row("  web worker CPU per stream (ms)", fmt(st["gateway_cpu_ms_per_stream"], 3))
    t.busiest_worker(st["busiest_worker_share_pct"])


FAMILY = Family(
    name="streams",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    models={STREAM.model: (UPSTREAM, CHAT_PROVIDER)},
    warmups=(Warmup("warmup-stream", (STREAM,), stream=True),),
)
