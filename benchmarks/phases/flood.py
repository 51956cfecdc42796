"""flood, flood-alone and flood-cost: legitimate requests while a flood of
made-up keys arrives, then as many of the same requests alone, then made-up
keys alone for what each costs the web workers (gateway only).

Every request of the flood has a new well-formed key that no key has (the
prefix and 48 random letters or digits), as a scanner or a broken client
would send: no cache of refused keys can help, each is new. The flood comes
from a load generator of its own (another client's process). The legitimate
requests (the key without limits, or the key with limits under
--limited-key) keep LEGIT_CONCURRENCY in flight from the flood's first
request to its last; then as many again are made alone, so that both p99s
are of as many requests (a longer window catches more of the machine's own
hiccups).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import RANDOM_KEY, Ask, Background
from harness.base import fmt
from harness.family import Family, Warmup
from harness.report import Table, check, lat
from phases import nonstream

if TYPE_CHECKING:
    from harness.bench import Bench

LEGIT = Ask("legitimate", nonstream.MODEL)
MADE_UP = Ask("made-up key", nonstream.MODEL, key=RANDOM_KEY, expect_status=401)
LEGIT_CONCURRENCY = 4
FLOOD_CONCURRENCY = 64
TARGETS = {"flood_legit_p99_ratio": 2.0}


def run(bench: Bench) -> None:
    c = bench.counts
    legit = {"stream": False, "concurrency": LEGIT_CONCURRENCY, "warmup": 50, "settle_s": 0.6}
    # The legitimate requests go on until the flood's last one is answered.
    flood = Background([MADE_UP], FLOOD_CONCURRENCY, c.flood)
    during = bench.phase("flood/gateway", "gateway", [LEGIT], requests=0, background=flood, **legit)
    alone = max(during["ok"] + during["failures"], c.flood // 5)
    bench.phase("flood-alone/gateway", "gateway", [LEGIT], requests=alone, **legit)
    bench.phase(
        "flood-cost/gateway",
        "gateway",
        [MADE_UP],
        stream=False,
        concurrency=FLOOD_CONCURRENCY,
        requests=c.flood // 5,
        warmup=0,
        settle_s=0.6,
    )


def summarise(r: dict) -> dict:
    alone, during = r["flood-alone/gateway"], r["flood/gateway"]
    made_up = during["background"]
    alone_p99 = lat(r, "flood-alone/gateway").get("p99")
    during_p99 = lat(r, "flood/gateway").get("p99")
    return {
        "flood": {
            "legit_concurrency": LEGIT_CONCURRENCY,
            "flood_concurrency": FLOOD_CONCURRENCY,
            "flood_requests": made_up["requests"],
            "legit_alone_p50_ms": lat(r, "flood-alone/gateway").get("p50"),
            "legit_alone_p99_ms": alone_p99,
            "legit_flood_p50_ms": lat(r, "flood/gateway").get("p50"),
            "legit_flood_p99_ms": during_p99,
            "legit_p99_ratio": during_p99 / alone_p99 if during_p99 and alone_p99 else None,
            "legit_requests_during_flood": during["ok"],
            "made_up_rps": made_up["throughput_rps"],
            "made_up_p50_ms": made_up["latency_ms"]["p50"],
            "made_up_p99_ms": made_up["latency_ms"]["p99"],
            "gateway_cpu_ms_per_made_up_key": r["flood-cost/gateway"]["gateway_cpu_ms_per_request"],
            "gateway_cpu_ms_per_legit_request_alone": alone["gateway_cpu_ms_per_request"],
            "failures": alone["failures"] + during["failures"] + made_up["failures"],
        }
    }


def targets(s: dict) -> dict:
    name = "flood_legit_p99_ratio"
    return {name: check(s["flood"]["legit_p99_ratio"], TARGETS[name])}


def rows(t: Table, s: dict) -> None:
    f = s["flood"]
    t.row(
        f"invalid-key flood: {f['flood_requests']:,} made-up keys at c={f['flood_concurrency']}, "
        f"legitimate requests at c={f['legit_concurrency']} (ms)"
    )
    for p in ("p50", "p99"):
        t.row(f"  legitimate {p} alone", fmt(f[f"legit_alone_{p}_ms"]))
        t.row(f"  legitimate {p} during the flood", fmt(f[f"legit_flood_{p}_ms"]))
    t.row(
        "  legitimate p99: during the flood / alone (x)",
        fmt(f["legit_p99_ratio"]),
        target=t.goal("flood_legit_p99_ratio", "<=", unit="x"),
    )
    t.row("  made-up keys refused per second", fmt(f["made_up_rps"], 0))
    t.row("  made-up key latency p99", fmt(f["made_up_p99_ms"]))
    t.row("  web worker CPU per made-up key (ms)", fmt(f["gateway_cpu_ms_per_made_up_key"], 3))


FAMILY = Family(
    name="flood",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    warmups=(Warmup("warmup-flood", (LEGIT,)),),
)
