"""embeddings-c1: /v1/embeddings answered whole, one at a time, alternating
with a chat completion (nonstream's model) so the two added latencies are
measured side by side, each against its own upstream call made directly.

The embeddings request is what the OpenAI SDK sends by default (base64
vectors), at text-embedding-3-small's 1,536 dimensions: PureBridge parses and
re-serialises the answer to put the public model id in it, so the size of
the vectors is part of what it adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import diff, fmt, signed
from harness.family import Family, Warmup
from harness.report import Table, check, key
from harness.seed import CHAT_PROVIDER
from phases import nonstream

if TYPE_CHECKING:
    from harness.bench import Bench

MODEL = "bench-embed"
UPSTREAM = "fake"
EMBEDDINGS = Ask("embeddings", MODEL, "embeddings")
CHAT = Ask("chat", nonstream.MODEL)
LABELS = (EMBEDDINGS.label, CHAT.label)
TARGETS = {"embeddings_added_p50_c1_ms": 2.0}  # chat's own target at c=1


def run(bench: Bench) -> None:
    c1 = {"stream": False, "concurrency": 1, "requests": 2 * bench.counts.c1, "warmup": 50}
    bench.pair("embeddings-c1", [EMBEDDINGS, CHAT], **c1, profile=True)


def summarise(r: dict) -> dict:
    g, d = r["embeddings-c1/gateway"], r["embeddings-c1/direct"]
    out: dict = {"failures": g["failures"] + d["failures"]}
    for label in LABELS:
        gv, dv = g["variants"][label], d["variants"][label]
        for p in ("p50", "p99"):
            out[f"{key(label)}_gateway_{p}_ms"] = gv["latency_ms"][p]
            out[f"{key(label)}_direct_{p}_ms"] = dv["latency_ms"][p]
            out[f"{key(label)}_added_{p}_ms"] = diff(gv["latency_ms"][p], dv["latency_ms"][p])
    out["embeddings_minus_chat_added_p50_ms"] = diff(
        out["embeddings_added_p50_ms"], out["chat_added_p50_ms"]
    )
    return {"embeddings_c1": out}


def targets(s: dict) -> dict:
    added = s["embeddings_c1"]["embeddings_added_p50_ms"]
    return {"embeddings_added_p50_c1_ms": check(added, TARGETS["embeddings_added_p50_c1_ms"])}


def rows(t: Table, s: dict) -> None:
    e = s["embeddings_c1"]
    t.row("/v1/embeddings vs chat, c=1, alternating (ms)")
    for label in LABELS:
        for p in ("p50", "p99"):
            primary = label == EMBEDDINGS.label and p == "p50"
            t.row(
                f"  {label} latency {p}",
                fmt(e[f"{key(label)}_gateway_{p}_ms"]),
                fmt(e[f"{key(label)}_direct_{p}_ms"]),
                signed(e[f"{key(label)}_added_{p}_ms"]),
                t.goal("embeddings_added_p50_c1_ms", "added <=") if primary else "",
            )
    t.row(
        "  added p50: embeddings minus chat",
        "",
        "",
        signed(e["embeddings_minus_chat_added_p50_ms"]),
    )


FAMILY = Family(
    name="embeddings",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    models={MODEL: (UPSTREAM, CHAT_PROVIDER)},
    kinds={MODEL: "embedding"},
    warmups=(Warmup("warmup-embeddings", (EMBEDDINGS, CHAT)),),
)
