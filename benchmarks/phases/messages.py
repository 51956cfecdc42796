"""messages-c1 and messages-stream-c1: /v1/messages passed through to an
Anthropic upstream and translated for a chat-only one, next to chat
completions to the same fake, taking turns in each phase, answered whole and
streamed. Directly, each is the request PureBridge makes of the upstream (a
Messages request for the Anthropic one, chat completions for the others), so
"added" is PureBridge's own time, translation included."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import diff, fmt, signed
from harness.family import Family, Warmup
from harness.report import Table, check, key
from harness.seed import ANTHROPIC_PROVIDER, CHAT_PROVIDER

if TYPE_CHECKING:
    from harness.bench import Bench

UPSTREAM = "fake?tokens=20"  # c=1: latency is PureBridge's work and the fake's
ASKS = [
    Ask("chat", "bench-msg-chat"),
    Ask("passed through", "bench-msg-pass", "messages"),
    Ask("translated", "bench-msg-trans", "messages"),
]
LABELS = ("chat", "passed through", "translated")
MODELS = {
    "bench-msg-chat": (UPSTREAM, CHAT_PROVIDER),
    "bench-msg-pass": (UPSTREAM, ANTHROPIC_PROVIDER),
    "bench-msg-trans": (UPSTREAM, CHAT_PROVIDER),
}
# Translating a request and its answer (or its stream, event by event) is a
# few dict walks: it may add at most this much to what chat adds.
TARGETS = {"messages_translated_minus_chat_p50_ms": 1.0}


def run(bench: Bench) -> None:
    c1 = {"concurrency": 1, "requests": 3 * bench.counts.c1, "warmup": 60}
    bench.pair("messages-c1", ASKS, stream=False, **c1, profile=True)
    bench.pair("messages-stream-c1", ASKS, stream=True, **c1)


def summarise(r: dict) -> dict:
    return {
        "messages_c1": _summary(r["messages-c1/gateway"], r["messages-c1/direct"], ("total",)),
        "messages_stream_c1": _summary(
            r["messages-stream-c1/gateway"], r["messages-stream-c1/direct"], ("total", "ttft")
        ),
    }


def _summary(g: dict, d: dict, metrics: tuple[str, ...]) -> dict:
    """Each API against its own upstream call made directly, and what the
    Messages API adds beyond what chat adds."""
    out: dict = {"failures": g["failures"] + d["failures"], "upstream": UPSTREAM}
    for label in LABELS:
        gv, dv = g["variants"][label], d["variants"][label]
        k = key(label)
        for metric in metrics:
            source = "latency_ms" if metric == "total" else "ttft_ms"
            for p in ("p50", "p99"):
                out[f"{k}_{metric}_{p}_ms"] = gv[source][p]
                out[f"{k}_direct_{metric}_{p}_ms"] = dv[source][p]
                out[f"{k}_added_{metric}_{p}_ms"] = diff(gv[source][p], dv[source][p])
    for label in ("passed_through", "translated"):
        for metric in metrics:
            out[f"{label}_minus_chat_{metric}_p50_ms"] = diff(
                out[f"{label}_added_{metric}_p50_ms"], out[f"chat_added_{metric}_p50_ms"]
            )
    return out


def targets(s: dict) -> dict:
    name = "messages_translated_minus_chat_p50_ms"
    return {name: check(s["messages_c1"]["translated_minus_chat_total_p50_ms"], TARGETS[name])}


def rows(t: Table, s: dict) -> None:
    for k, title, metrics in (
        ("messages_c1", "/v1/messages answered whole, c=1", ("total",)),
        ("messages_stream_c1", "/v1/messages streamed, c=1", ("total", "ttft")),
    ):
        rs = s[k]
        t.row(f"{title}, {rs['upstream']} (ms)")
        for metric in metrics:
            for label in LABELS:
                lk = key(label)
                t.row(
                    f"  {metric} p50, {label}",
                    fmt(rs[f"{lk}_{metric}_p50_ms"]),
                    fmt(rs[f"{lk}_direct_{metric}_p50_ms"]),
                    signed(rs[f"{lk}_added_{metric}_p50_ms"]),
                )
            for label in ("passed_through", "translated"):
                primary = k == "messages_c1" and label == "translated"
                t.row(
                    f"  {metric} p50: {label.replace('_', ' ')} minus chat",
                    "",
                    "",
                    signed(rs[f"{label}_minus_chat_{metric}_p50_ms"]),
                    t.goal("messages_translated_minus_chat_p50_ms", "<=") if primary else "",
                )


FAMILY = Family(
    name="messages",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    models=MODELS,
    warmups=(
        Warmup("warmup-messages", tuple(ASKS)),
        Warmup("warmup-messages-stream", tuple(ASKS), stream=True),
    ),
)
