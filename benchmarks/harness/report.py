"""The end of a run: the summary, the verdicts on the targets, the table, the JSON."""

from __future__ import annotations

import json

from harness.base import RESULTS, ROOT, diff, fmt, log, signed
from harness.family import Family
from harness.measure import disturbed
from harness.seed import LIMITED_KEY_DAILY_USD, LIMITED_KEY_RPM, LIMITED_KEY_TPM

HEADER = ("", "gateway", "direct", "added", "target")


def summarise(results: dict, families: tuple[Family, ...]) -> dict:
    summary: dict = {}
    for family in families:
        summary.update(family.summarise(results))
    targets: dict = {}
    for family in families:
        targets.update(family.targets(summary))
    summary["targets"] = targets
    return summary


class Table:
    """The rows of the printed table: label, gateway, direct, added, target."""

    def __init__(self, summary: dict, workers: int) -> None:
        self.verdicts = summary["targets"]
        self.workers = workers
        self.rows: list[tuple[str, str, str, str, str]] = []

    def row(self, label: str, gw: str = "", direct: str = "", added: str = "", target: str = ""):
        self.rows.append((label, gw, direct, added, target))

    def mark(self, name: str) -> str:
        if name not in self.verdicts:
            return ""
        return "met" if self.verdicts[name]["met"] else "MISSED"

    def goal(self, name: str, wording: str, unit: str = "ms") -> str:
        """The target column: `wording` ("added <=") with the target's value, met or not."""
        return f"{wording} {self.verdicts[name]['target']:g} {unit}: {self.mark(name)}"

    def percentiles(self, label: str, section: dict, prefix: str = "", goal: str = "") -> None:
        """p50 and p99 of a gateway_vs_direct section; `goal` beside p50."""
        for p in ("p50", "p99"):
            self.row(
                f"  {label} {p}",
                fmt(section[f"gateway_{prefix}{p}_ms"]),
                fmt(section[f"direct_{prefix}{p}_ms"]),
                signed(section[f"added_{prefix}{p}_ms"]),
                goal if p == "p50" else "",
            )

    def busiest_worker(self, share_pct: float | None) -> None:
        if self.workers > 1:
            row = "  busiest web worker's share of the work (%)"
            self.row(row, fmt(share_pct, 0))

    def lines(self) -> list[str]:
        widths = [max(len(r[i]) for r in [HEADER, *self.rows]) for i in range(5)]
        header = _line(HEADER, widths)
        return [header, "-" * len(header), *(_line(r, widths) for r in self.rows)]


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(
        v.ljust(w) if i in (0, 4) else v.rjust(w)
        for i, (v, w) in enumerate(zip(cells, widths, strict=True))
    )


def print_report(summary: dict, results: dict, meta: dict, families: tuple[Family, ...]) -> None:
    table = Table(summary, meta["workers"])
    for family in families:
        family.rows(table, summary)
    print()
    print(
        f"PureBridge benchmark — {meta['workers']} web worker(s), {meta['cpus']} CPUs, "
        f"{meta['when']}{' (--quick)' if meta['quick'] else ''}"
    )
    if meta["app"] != "purebridge.asgi:application":
        print(f"app: {meta['app']}")
    if meta["limited_key"]:
        print(
            f"every phase with the key with limits: RPM {LIMITED_KEY_RPM:,}, TPM "
            f"{LIMITED_KEY_TPM:,}, daily budget ${LIMITED_KEY_DAILY_USD} (--limited-key)"
        )
    for line in table.lines():
        print(line)
    failures = {
        k: v["failures"] for k, v in results.items() if isinstance(v, dict) and v.get("failures")
    }
    if failures:
        print(f"\nfailed requests per phase: {failures}")
    for warning in warnings(results):
        print(f"WARNING: {warning}")
    for message, count in list(results.get("gateway_log", {}).items())[:5]:
        print(f"the gateway logged {count}x: {message}")
    print()


def warnings(results: dict) -> list[str]:
    out = list(results.get("warnings", []))
    for name, result in results.items():
        if not isinstance(result, dict) or "cpu" not in result or name.startswith("warmup"):
            continue
        if disturbed(result):
            out.append(
                f"{name}: {result['cpu']['other']['pct_of_machine']:.0f}% of the machine was "
                "busy with processes outside this benchmark; its numbers are disturbed"
            )
    return out


def write_json(meta: dict, summary: dict, results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "summary": summary, "warnings": warnings(results), "phases": results}
    RESULTS.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    log(f"wrote {RESULTS.relative_to(ROOT)}")


# What the phases' summaries are made of.


def lat(results: dict, name: str, key: str = "latency_ms") -> dict:
    return (results.get(name) or {}).get(key) or {}


def added(results: dict, name: str, p: str, key: str = "latency_ms") -> float | None:
    """Gateway minus direct, at percentile `p`, of the pair of phases `name`."""
    return diff(
        lat(results, f"{name}/gateway", key).get(p), lat(results, f"{name}/direct", key).get(p)
    )


def gateway_vs_direct(results: dict, name: str, key: str = "latency_ms", prefix: str = "") -> dict:
    """p50 and p99 through the gateway, direct, and the difference (added)."""
    out: dict = {}
    for via in ("gateway", "direct"):
        for p in ("p50", "p99"):
            out[f"{via}_{prefix}{p}_ms"] = lat(results, f"{name}/{via}", key).get(p)
    for p in ("p50", "p99"):
        out[f"added_{prefix}{p}_ms"] = added(results, name, p, key)
    return out


def ab(phase: dict, a: str, b: str) -> dict:
    """Two variants of one phase: each one's latency, and a's minus b's (added)."""
    va, vb = phase["variants"][a], phase["variants"][b]
    out: dict = {}
    for p in ("p50", "p99"):
        out[f"{key(a)}_{p}_ms"] = va["latency_ms"][p]
        out[f"{key(b)}_{p}_ms"] = vb["latency_ms"][p]
        out[f"added_{p}_ms"] = diff(va["latency_ms"][p], vb["latency_ms"][p])
    out["failures"] = phase["failures"]
    return out


def check(value: float | None, limit: float) -> dict:
    return {"value": value, "target": limit, "met": value is not None and value <= limit}


def key(label: str) -> str:
    return label.replace(" ", "_")
