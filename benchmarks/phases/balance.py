"""balance-c1: what holding an account to its balance costs, a key whose
account has credit against the same key shape on an account served unmetered
(gateway only, alternating).

Neither key has limits of its own: the unmetered one skips admission, the
other is admitted against its account's balance (counted prompt, the Redis
script or, once the key is busy, a lease).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.asks import Ask
from harness.base import fmt, signed
from harness.family import Family
from harness.report import Table, ab, check
from harness.seed import Key
from phases import nonstream

if TYPE_CHECKING:
    from harness.bench import Bench

UNMETERED = Ask("unmetered", nonstream.MODEL, key="plain")
# Credit a run never comes near: every request is reserved and settled.
BALANCE = Ask("balance", nonstream.MODEL, key="balance")
TARGETS = {"balance_added_p50_c1_ms": 0.5}


def run(bench: Bench) -> None:
    bench.phase(
        "balance-c1/gateway",
        "gateway",
        [UNMETERED, BALANCE],
        stream=False,
        concurrency=1,
        requests=2 * bench.counts.c1,
        warmup=50,
    )


def summarise(r: dict) -> dict:
    return {"balance_c1": ab(r["balance-c1/gateway"], BALANCE.label, UNMETERED.label)}


def targets(s: dict) -> dict:
    added = s["balance_c1"]["added_p50_ms"]
    return {"balance_added_p50_c1_ms": check(added, TARGETS["balance_added_p50_c1_ms"])}


def rows(t: Table, s: dict) -> None:
    b = s["balance_c1"]
    t.row("balance, c=1: a key whose account has credit vs one unmetered, alternating (ms)")
    for p in ("p50", "p99"):
        t.row(
            f"  latency {p}, account held to its balance",
            fmt(b[f"balance_{p}_ms"]),
            "",
            signed(b[f"added_{p}_ms"]),
            t.goal("balance_added_p50_c1_ms", "added <=") if p == "p50" else "",
        )
        t.row(f"  latency {p}, account unmetered", fmt(b[f"unmetered_{p}_ms"]))


FAMILY = Family(
    name="balance",
    run=run,
    summarise=summarise,
    targets=targets,
    rows=rows,
    requires=("nonstream",),
    keys={"balance": Key(email="bench-balance@example.com", credit_usd="1000000")},
)
