"""responses-c1 and responses-c64: /v1/responses streamed, passed through to a
Responses upstream and translated for a chat-only one, alternating in each phase.
Directly, each is the request PureBridge makes of the upstream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import diff, fmt, signed
from harness.family import Family, Warmup
from harness.report import Table, check, key
from harness.seed import CHAT_PROVIDER, RESPONSES_PROVIDER
from phases import streams

if TYPE_CHECKING:
    from harness.bench import Bench

UPSTREAM = "fake?tokens=20"  # c=1: the whole stream at once, latency is our work
STREAM_UPSTREAM = streams.UPSTREAM
C1 = [
    Ask("passed through", "bench-resp-pass", "responses"),
    Ask("translated", "bench-resp-trans", "responses"),
]
C64 = [
    Ask("passed through", "bench-resp-stream-pass", "responses"),
    Ask("translated", "bench-resp-stream-trans", "responses"),
]
MODELS = {
    "bench-resp-pass": (UPSTREAM, RESPONSES_PROVIDER),
    "bench-resp-trans": (UPSTREAM, CHAT_PROVIDER),
    "bench-resp-stream-pass": (STREAM_UPSTREAM, RESPONSES_PROVIDER),
    "bench-resp-stream-trans": (STREAM_UPSTREAM, CHAT_PROVIDER),
}
TARGETS = {"translated_minus_passthrough_p50_ms": 1.0}


def run(bench: Bench) -> None:
    c1 = {"stream": True, "concurrency": 1, "requests": 2 * bench.counts.c1, "warmup": 50}
    bench.pair("responses-c1", C1, **c1, profile=True)
    bench.pair("responses-c64", C64, **streams.streams_64(bench.counts))


def summarise(r: dict) -> dict:
    c64 = r["responses-c64/gateway"]
    return {
        "responses_c1": {
            **_summary(r["responses-c1/gateway"], r["responses-c1/direct"]),
            "upstream": UPSTREAM,
        },
        "responses_c64": {
            **_summary(c64, r["responses-c64/direct"]),
            "upstream": STREAM_UPSTREAM,
            "gateway_cpu_ms_per_stream": c64["gateway_cpu_ms_per_request"],
        },
    }


def _summary(g: dict, d: dict) -> dict:
    """Passed through vs translated, each against its own upstream call direct."""
    out: dict = {"failures": g["failures"] + d["failures"]}
    for label in ("passed through", "translated"):
        gv, dv = g["variants"][label], d["variants"][label]
        k = key(label)
        for metric, name in (("latency_ms", "total"), ("ttft_ms", "ttft")):
            for p in ("p50", "p99"):
                out[f"{k}_{name}_{p}_ms"] = gv[metric][p]
                out[f"{k}_direct_{name}_{p}_ms"] = dv[metric][p]
                out[f"{k}_added_{name}_{p}_ms"] = diff(gv[metric][p], dv[metric][p])
    for name in ("total", "ttft"):
        out[f"translated_minus_passthrough_{name}_p50_ms"] = diff(
            out[f"translated_added_{name}_p50_ms"], out[f"passed_through_added_{name}_p50_ms"]
        )
    out["translated_minus_passthrough_p50_ms"] = out["translated_minus_passthrough_total_p50_ms"]
    return out


def targets(s: dict) -> dict:
    value = s["responses_c1"]["translated_minus_passthrough_p50_ms"]
    name = "translated_minus_passthrough_p50_ms"
    return {name: check(value, TARGETS[name])}


def rows(t: Table, s: dict) -> None:
    for k, title in (
        ("responses_c1", "/v1/responses streamed, c=1"),
        ("responses_c64", "/v1/responses streamed, 64 streams"),
    ):
        rs = s[k]
        t.row(f"{title}, {rs['upstream']} (ms)")
        metrics = ("total", "ttft") if k == "responses_c1" else ("ttft",)
        for metric in metrics:
            for label in ("passed_through", "translated"):
                t.row(
                    f"  {metric} p50, {label.replace('_', ' ')}",
                    fmt(rs[f"{label}_{metric}_p50_ms"]),
                    fmt(rs[f"{label}_direct_{metric}_p50_ms"]),
                    signed(rs[f"{label}_added_{metric}_p50_ms"]),
                )
            primary = k == "responses_c1" and metric == "total"
            t.row(
                f"  {metric} p50: translated minus passed through",
                "",
                "",
                signed(rs[f"translated_minus_passthrough_{metric}_p50_ms"]),
                t.goal("translated_minus_passthrough_p50_ms", "<=") if primary else "",
            )
        if "gateway_cpu_ms_per_stream" in rs:
            t.row("  web worker CPU per stream (ms)", fmt(rs["gateway_cpu_ms_per_stream"], 3))


FAMILY = Family(
    name="responses",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    models=MODELS,
    warmups=(Warmup("warmup-responses", tuple(C1), stream=True),),
)
