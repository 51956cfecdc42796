"""admission-c1 and admission-c64: what admission costs, a key with limits against
one without (gateway only).

The key with limits never comes near them, so after its first requests each
worker admits it from leases: these phases measure a busy key, not the Redis
round trip a key near its limits pays on every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import diff, fmt, signed
from harness.family import Family
from harness.report import Table, ab, check, lat
from phases import nonstream

if TYPE_CHECKING:
    from harness.bench import Bench

NO_LIMITS = Ask("no limits", nonstream.MODEL, key="plain")
LIMITS = nonstream.LIMITED
TARGETS = {"admission_added_p50_c1_ms": 0.5}


def run(bench: Bench) -> None:
    c = bench.counts
    # Admission's cost: the same request with and without limits, alternating.
    bench.phase(
        "admission-c1/gateway",
        "gateway",
        [NO_LIMITS, LIMITS],
        stream=False,
        concurrency=1,
        requests=2 * c.c1,
        warmup=50,
        profile=True,
    )
    if not bench.args.limited_key:
        # The same as nonstream-c64, every request admitted: CPU per request.
        bench.phase(
            "admission-c64/gateway", "gateway", [LIMITS], **nonstream.c64_load(c), profile=True
        )


def summarise(r: dict) -> dict:
    c1 = r["admission-c1/gateway"]
    s = {
        "admission_c1": {
            "direct_p50_ms": r["nonstream-c1/direct"]["latency_ms"]["p50"],
            **ab(c1, LIMITS.label, NO_LIMITS.label),
        }
    }
    if "admission-c64/gateway" in r:
        c64 = r["admission-c64/gateway"]
        s["admission_c64"] = {
            "gateway_cpu_ms_per_request_limits": c64["gateway_cpu_ms_per_request"],
            "gateway_cpu_ms_per_request_no_limits": r["nonstream-c64/gateway"][
                "gateway_cpu_ms_per_request"
            ],
            "gateway_rps_limits": c64["throughput_rps"],
            "latency_p50_ms_limits": lat(r, "admission-c64/gateway").get("p50"),
            "failures": c64["failures"],
        }
    return s


def targets(s: dict) -> dict:
    added = s["admission_c1"]["added_p50_ms"]
    return {"admission_added_p50_c1_ms": check(added, TARGETS["admission_added_p50_c1_ms"])}


def rows(t: Table, s: dict) -> None:
    ad = s["admission_c1"]
    t.row("admission, c=1: a key with limits vs one without, alternating (ms)")
    for p in ("p50", "p99"):
        t.row(
            f"  latency {p}, key with RPM+TPM+daily budget",
            fmt(ad[f"limits_{p}_ms"]),
            "",
            signed(ad[f"added_{p}_ms"]),
            t.goal("admission_added_p50_c1_ms", "added <=") if p == "p50" else "",
        )
        t.row(f"  latency {p}, key without limits", fmt(ad[f"no_limits_{p}_ms"]))
    ad64 = s.get("admission_c64")
    if ad64:
        limits = ad64["gateway_cpu_ms_per_request_limits"]
        added = diff(limits, ad64["gateway_cpu_ms_per_request_no_limits"])
        t.row(
            "  web worker CPU per request at c=64, with limits (ms)",
            fmt(limits, 3),
            "",
            signed(added, 3),
        )


FAMILY = Family(
    name="admission",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    requires=("nonstream",),
)
