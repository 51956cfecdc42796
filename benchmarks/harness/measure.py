"""What a phase's result gets beyond the load generator's figures: CPU per request,
worker memory, and the log line that tells how it went."""

from __future__ import annotations

import time

from harness.base import CLK_TCK, OTHER_LOAD_WARN_PCT, fmt, log
from harness.machine import busy_pct, cpu_ticks, machine_ticks, pss_kb


def disturbed(result: dict) -> bool:
    """True when processes outside the benchmark took a share of the machine in the phase."""
    return result["cpu"]["other"]["pct_of_machine"] > OTHER_LOAD_WARN_PCT


def add_cpu(result: dict, cpu: dict) -> None:
    """The CPU window of a phase, and each process's CPU per request made."""
    result["cpu"] = cpu
    n = max(result["ok"] + result["failures"], 1)
    result["gateway_cpu_ms_per_request"] = cpu["gateway_workers"]["cpu_ms"] / n
    result["fake_cpu_ms_per_request"] = cpu["fake_upstream"]["cpu_ms"] / n
    result["loadgen_cpu_ms_per_request"] = cpu["loadgen"]["cpu_ms"] / n
    result["postgres_redis_cpu_ms_per_request"] = cpu["postgres_redis"]["cpu_ms"] / n
    per_worker = list(cpu["gateway_workers"]["per_pid_cpu_ms"].values())
    result["busiest_worker_share_pct"] = (
        100.0 * max(per_worker) / sum(per_worker) if sum(per_worker) > 0 else None
    )


class PssSampler:
    """The web workers' PSS (its peak) and CPU (its busiest 0.5 s), sampled every
    ~100 ms while a phase runs."""

    def __init__(self, workers: list[int]) -> None:
        self.workers = workers
        self.peak_kb = 0
        self.samples = 0
        self.timeline: list[tuple[float, int, int, int]] = []  # (t, worker ticks, busy, total)
        self.t0 = time.monotonic()
        self.idle_kb = sum(pss_kb(p) for p in workers)

    def sample(self) -> None:
        self.peak_kb = max(self.peak_kb, sum(pss_kb(p) for p in self.workers))
        self.samples += 1
        busy, all_ticks, _ = machine_ticks()
        ticks = sum(cpu_ticks(p) for p in self.workers)
        self.timeline.append((time.monotonic() - self.t0, ticks, busy, all_ticks))

    def add_to(self, result: dict) -> None:
        result["pss"] = {
            "idle_mb": self.idle_kb / 1024,
            "peak_mb": self.peak_kb / 1024,
            "samples": self.samples,
        }
        result["cpu_timeline"] = self.busiest_half_second()

    def busiest_half_second(self) -> dict:
        timeline, workers = self.timeline, len(self.workers)
        best = {"workers_pct_of_their_cores": 0.0, "machine_busy_pct": 0.0, "at_s": 0.0}
        for i, (t, ticks, busy, total) in enumerate(timeline):
            j = next((k for k in range(i, len(timeline)) if timeline[k][0] - t >= 0.5), None)
            if j is None:
                break
            t2, ticks2, busy2, total2 = timeline[j]
            used = (ticks2 - ticks) / CLK_TCK / ((t2 - t) * max(workers, 1)) * 100
            if used > best["workers_pct_of_their_cores"]:
                best = {
                    "workers_pct_of_their_cores": used,
                    "machine_busy_pct": busy_pct((busy, total), (busy2, total2)),
                    "at_s": t,
                }
        return best


def log_phase(name: str, result: dict) -> None:
    cpu, lat, requests = result["cpu"], result["latency_ms"], result["requests"]
    extra = ""
    if result.get("ttft_ms"):
        extra = f" ttft p50={fmt(result['ttft_ms']['p50'])}ms"
    log(
        f"{name:<28} ok={result['ok']}/{requests} fail={result['failures']} "
        f"p50={fmt(lat['p50'])}ms p99={fmt(lat['p99'])}ms "
        f"{fmt(result['throughput_rps'], 0)} req/s{extra} "
        f"gw-cpu={cpu['gateway_workers']['cpu_ms']:.0f}ms"
        f"{_split(cpu['gateway_workers']['per_pid_cpu_ms'])} "
        f"busy={cpu['machine_busy_pct']:.0f}% "
        f"softirq={cpu['irq_softirq_steal']['pct_of_machine']:.0f}% "
        f"other={cpu['other']['pct_of_machine']:.0f}%"
    )
    if len(result["variants"]) > 1:
        for label, v in result["variants"].items():
            ttft = v["ttft_ms"]["p50"] if v["ttft_ms"] else None
            log(
                f"  {label:<26} ok={v['ok']} fail={v['failures']} "
                f"p50={fmt(v['latency_ms']['p50'])}ms p99={fmt(v['latency_ms']['p99'])}ms"
                + (f" ttft p50={fmt(ttft)}ms" if ttft is not None else "")
            )
    background = result.get("background")
    if background:
        log(
            f"  background ok={background['ok']}/{background['requests']} "
            f"fail={background['failures']} p50={fmt(background['latency_ms']['p50'])}ms "
            f"p99={fmt(background['latency_ms']['p99'])}ms "
            f"{fmt(background['throughput_rps'], 0)} req/s"
        )
    for part in (result, background or {}):
        if part.get("failures"):
            log(f"  failures: {part['failure_kinds']} {part['error_samples'][:2]}")


def _split(per_pid: dict) -> str:
    values = [f"{v:.0f}" for v in per_pid.values()]
    return f" ({'/'.join(values)})" if len(values) > 1 else ""
