"""PureBridge benchmark: the gateway against the same fake upstream called directly.

    make bench                                   # = scripts/with-services.sh .venv/bin/python benchmarks/run.py
    make bench BENCH_ARGS="--quick"              # a smoke run with small counts
    make bench BENCH_ARGS="--workers 1 --skip-slow-streams"
    make bench BENCH_ARGS="--wait-idle 600"      # on a shared machine: wait for quiet

benchmarks/README.md describes the scenarios, the options and how to read the
numbers.

One run, on this machine, in the production shape:

1. the fake OpenAI upstream (tests/fake_upstream.py, uvloop, --no-record) on a
   free loopback port;
2. PureBridge against the DATABASE_URL / REDIS_URL that with-services.sh gives:
   `migrate`, `loadconfig` (a generated TOML: one provider pointing at the fake,
   one public model per scenario), `createapikey`, then gunicorn with uvicorn
   workers on 127.0.0.1;
3. a load generator (benchmarks/loadgen.py, aiohttp on uvloop) in its own
   process, driven phase by phase; each phase warms up first;
4. every scenario measured against PureBridge and against the fake upstream
   directly, with the same body and concurrency; CPU from /proc/<pid>/stat of
   the gunicorn workers (children of the master) and of the fake upstream;
   PSS from /proc/<pid>/smaps_rollup;
5. a table at the end and the same numbers in benchmarks/results/latest.json.

Targets are reported, never asserted: the exit status is 0 whenever the
benchmark itself ran. Every process started here is killed (by process group)
in a `finally`, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.asks import Ask, loadgen_variant
from harness.base import (
    HOST,
    RESULTS,
    ROOT,
    VIAS,
    diff,
    fmt,
    log,
    signed,
)
from harness.loadgen_driver import LoadGen
from harness.machine import (
    CpuWindow,
    children,
    service_pids,
    wait_for_calm,
    wait_for_quiet,
)
from harness.measure import PssSampler, add_cpu, disturbed, log_phase
from harness.procs import Procs, free_port, raise_nofile
from harness.profiling import start_profilers, stop_profilers
from harness.seed import (
    CHAT_PROVIDER,
    KEYS,
    LIMITED_KEY_DAILY_USD,
    LIMITED_KEY_RPM,
    LIMITED_KEY_TPM,
    RESPONSES_PROVIDER,
    pause_autovacuum,
    seed,
    vacuum,
)
from harness.servers import gateway_errors, gateway_warnings, start_fake, start_gateway

TARGETS = {
    "gateway_cpu_ms_per_request": 1.5,
    "added_p50_c1_ms": 2.0,
    "added_ttft_p50_c64_ms": 5.0,
    "admission_added_p50_c1_ms": 0.5,
    "translated_minus_passthrough_p50_ms": 1.0,
    "slow_total_p50_ms": 1500.0,
    "slow_peak_pss_mb": 400.0,
}

# Upstream behaviour per scenario (the fake reads it from the model name).
NONSTREAM_UPSTREAM = "fake?tokens=16"
STREAM_UPSTREAM = "fake?tokens=20&interval_ms=25"
SLOW_UPSTREAM = "fake?tokens=20&interval_ms=50"
RESPONSES_UPSTREAM = "fake?tokens=20"  # c=1: the whole stream at once, latency is our work
RESPONSES_STREAM_UPSTREAM = STREAM_UPSTREAM
STREAM_RAMP_S = 0.5  # ~ the length of one STREAM_UPSTREAM stream
SLOW_RAMP_S = 0.5
PROFILED_PHASES = (
    "nonstream-c1/",
    "nonstream-c64/",
    "stream-c64/",
    "slow-streams/",
    "admission-c1/",
    "admission-c64/",
    "responses-c1/",
)
RETRIES = 2  # with --wait-idle: how often a disturbed pair of phases is measured again
# public model -> (upstream model, provider)
MODELS = {
    "bench-chat": (NONSTREAM_UPSTREAM, CHAT_PROVIDER),
    "bench-stream": (STREAM_UPSTREAM, CHAT_PROVIDER),
    "bench-slow": (SLOW_UPSTREAM, CHAT_PROVIDER),
    "bench-resp-pass": (RESPONSES_UPSTREAM, RESPONSES_PROVIDER),
    "bench-resp-trans": (RESPONSES_UPSTREAM, CHAT_PROVIDER),
    "bench-resp-stream-pass": (RESPONSES_STREAM_UPSTREAM, RESPONSES_PROVIDER),
    "bench-resp-stream-trans": (RESPONSES_STREAM_UPSTREAM, CHAT_PROVIDER),
}


@dataclass
class Counts:
    warmup: int
    c1: int
    c64: int
    streams: int
    slow: int


FULL = Counts(warmup=300, c1=500, c64=3000, streams=640, slow=1000)
QUICK = Counts(warmup=60, c1=100, c64=500, streams=128, slow=200)


# ---------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.counts = QUICK if args.quick else FULL
        self.procs = Procs()
        self.tmp = Path(tempfile.mkdtemp(prefix="purebridge-bench."))
        self.fake_port = free_port()
        self.gw_port = free_port()
        self.fake: subprocess.Popen | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.loadgen: LoadGen | None = None
        self.keys: dict[str, str] = {}  # secrets by name, seed.KEYS
        self.workers: list[int] = []
        # --pin: the web workers on their own cores, everything else on the rest.
        self.gateway_cpus: set[int] | None = None
        self.harness_cpus: set[int] | None = None
        if args.pin:
            allowed = sorted(os.sched_getaffinity(0))
            if len(allowed) <= args.workers:
                raise SystemExit(
                    f"--pin needs more than {args.workers} CPUs (one per web worker and at "
                    f"least one for the rest); this machine lets us use {len(allowed)}"
                )
            self.gateway_cpus = set(allowed[: args.workers])
            self.harness_cpus = set(allowed[args.workers :])
        self.results: dict = {}
        self.autovacuum_paused = False
        self.succeeded = False  # a failed run keeps its logs in self.tmp

    # -- phases -------------------------------------------------------------

    def phase(
        self,
        name: str,
        via: str,
        asks: list[Ask],
        *,
        stream: bool,
        concurrency: int,
        requests: int,
        warmup: int,
        timeout_s: float = 60,
        deadline_s: float = 300,
        settle_s: float = 0.0,
        sample_pss: bool = False,
        ramp_s: float = 0.0,
    ) -> dict:
        """One phase through `via`: warm up, then measure `requests` requests made
        `concurrency` at a time, taking turns among `asks`."""
        assert self.loadgen is not None
        if via == "gateway" and self.autovacuum_paused:
            vacuum()
        wait_for_calm()
        self.loadgen.send(
            {
                "op": "phase",
                "name": name,
                "variants": [self.variant(via, ask, stream) for ask in asks],
                "stream": stream,
                "concurrency": concurrency,
                "requests": requests,
                "warmup": warmup,
                "timeout_s": timeout_s,
                "deadline_s": deadline_s,
                "ramp_s": ramp_s,
            }
        )
        self.loadgen.wait("ready", deadline_s + 60)
        self.check_workers()
        profiled = via == "gateway" and name.startswith(PROFILED_PHASES)
        profile_dir: Path | None = self.args.profile if profiled else None
        result = self.measure(name, deadline_s + 60, settle_s, sample_pss, profile_dir)
        self.check_workers()
        log_phase(name, requests, result)
        self.results[name] = result
        return result

    def measure(
        self, name: str, timeout: float, settle_s: float, sample_pss: bool, profile_dir: Path | None
    ) -> dict:
        """From the load generator's "ready" to its "done": its result, with the CPU
        of every process between the two (and the web workers' PSS)."""
        assert self.loadgen is not None
        profilers = []
        if profile_dir is not None:
            native = self.args.profile_native
            profilers = start_profilers(self.procs, name, self.workers, profile_dir, native)
        window = self.cpu_window(profilers)
        sampler = PssSampler(self.workers) if sample_pss else None
        window.start()
        self.loadgen.send({"op": "go"})
        try:
            done = self.loadgen.wait("done", timeout, tick=sampler.sample if sampler else None)
            # Usage records are written by a thread every 0.2 s: include that work.
            if settle_s:
                time.sleep(settle_s)
            cpu = window.stop()
        finally:
            if profilers and profile_dir is not None:
                stop_profilers(name, profilers, self.workers, profile_dir)
        result = done["result"]
        add_cpu(result, cpu)
        if sampler:
            sampler.add_to(result)
        return result

    def variant(self, via: str, ask: Ask, stream: bool) -> dict:
        """What the load generator sends for `ask`: to PureBridge, or the
        request PureBridge makes of the upstream, sent to the fake directly."""
        upstream, provider = MODELS[ask.model]
        if via == "gateway":
            key = ask.key or ("limited" if self.args.limited_key else "plain")
            base = f"http://{HOST}:{self.gw_port}/v1"
            return loadgen_variant(ask, base, ask.model, self.keys[key], ask.api, stream)
        # A chat-only upstream gets what PureBridge translates a Responses request into.
        api = ask.api if provider == RESPONSES_PROVIDER else "chat"
        base = f"http://{HOST}:{self.fake_port}/v1"
        return loadgen_variant(ask, base, upstream, "bench", api, stream)

    def cpu_window(self, profilers: list[subprocess.Popen]) -> CpuWindow:
        assert self.fake is not None and self.gunicorn is not None and self.loadgen is not None
        fake_pid, loadgen_pid, master = self.fake.pid, self.loadgen.proc.pid, self.gunicorn.pid
        return CpuWindow(
            {
                "gateway_workers": lambda: list(self.workers),
                "gunicorn_master": lambda: [master],
                "fake_upstream": lambda: [fake_pid],
                "loadgen": lambda: [loadgen_pid],
                "postgres_redis": service_pids,
                "bench_runner": lambda: [os.getpid()],
                "py_spy": lambda: [p.pid for p in profilers],
            }
        )

    def check_workers(self) -> None:
        assert self.gunicorn is not None
        now = children(self.gunicorn.pid)
        if now != self.workers:
            log(f"WARNING: gunicorn workers changed {self.workers} -> {now} (a worker died?)")
            self.results.setdefault("warnings", []).append(
                f"workers changed {self.workers} -> {now}"
            )
            self.workers = now

    def run_phases(self) -> None:
        c = self.counts
        chat = [Ask("chat", "bench-chat")]
        stream = [Ask("chat", "bench-stream")]
        # A/B in one phase: the two kinds of request take turns.
        admission = [
            Ask("no limits", "bench-chat", key="plain"),
            Ask("limits", "bench-chat", key="limited"),
        ]
        responses = [
            Ask("passed through", "bench-resp-pass", "responses"),
            Ask("translated", "bench-resp-trans", "responses"),
        ]
        responses_streams = [
            Ask("passed through", "bench-resp-stream-pass", "responses"),
            Ask("translated", "bench-resp-stream-trans", "responses"),
        ]
        # General warm-up: key cache, catalogue, upstream pool, imports on first use.
        warmups = (
            ("warmup", chat + admission[1:], False),
            ("warmup-stream", stream, True),
            ("warmup-responses", responses, True),
        )
        for via in ("direct", "gateway"):
            for name, asks, streamed in warmups:
                self.phase(
                    f"{name}/{via}",
                    via,
                    asks,
                    stream=streamed,
                    concurrency=16,
                    requests=c.warmup if not streamed else max(c.warmup // 5, 16),
                    warmup=0,
                )
        self.pair("nonstream-c1", chat, stream=False, concurrency=1, requests=c.c1, warmup=50)
        self.pair(
            "nonstream-c64",
            chat,
            stream=False,
            concurrency=64,
            requests=c.c64,
            warmup=256,
            settle_s=0.6,
        )
        # Admission's cost: the same request with and without limits, alternating.
        self.phase(
            "admission-c1/gateway",
            "gateway",
            admission,
            stream=False,
            concurrency=1,
            requests=2 * c.c1,
            warmup=50,
        )
        if not self.args.limited_key:
            # The same as nonstream-c64, every request admitted: CPU per request.
            self.phase(
                "admission-c64/gateway",
                "gateway",
                admission[1:],
                stream=False,
                concurrency=64,
                requests=c.c64,
                warmup=256,
                settle_s=0.6,
            )
        streams_64 = {
            "stream": True,
            "concurrency": 64,
            "requests": c.streams,
            "warmup": 64,
            "settle_s": 0.6,
            # Spread the first 64 over one stream's length: otherwise all 64 start,
            # end and start again together, in lock-step waves no real traffic has.
            "ramp_s": STREAM_RAMP_S,
        }
        self.pair("stream-c64", stream, **streams_64)
        # /v1/responses streamed: passed through to a Responses upstream and
        # translated for a chat-only one, alternating in each phase.
        self.pair(
            "responses-c1",
            responses,
            stream=True,
            concurrency=1,
            requests=2 * c.c1,
            warmup=50,
        )
        self.pair("responses-c64", responses_streams, **streams_64)
        if not self.args.skip_slow_streams:
            # The client opens its streams spread over SLOW_RAMP_S (all of them are
            # still open together: each lasts ~1 s), then once more all at once.
            for name, ramp in (("slow-streams", SLOW_RAMP_S), ("slow-burst", 0.0)):
                self.pair(
                    name,
                    [Ask("chat", "bench-slow")],
                    stream=True,
                    concurrency=c.slow,
                    requests=c.slow,
                    warmup=0,
                    timeout_s=120,
                    deadline_s=180,
                    settle_s=0.6,
                    sample_pss=True,
                    ramp_s=ramp,
                )

    def pair(self, name: str, asks: list[Ask], **kw) -> None:
        """The scenario direct, then through the gateway. With --wait-idle, a pair
        that another job disturbed is measured again (at most RETRIES times)."""
        for attempt in range(RETRIES + 1):
            if self.args.wait_idle and attempt:
                wait_for_quiet(self.args.wait_idle)
            for via in VIAS:
                pss = kw.get("sample_pss", False) and via == "gateway"
                self.phase(f"{name}/{via}", via, asks, **{**kw, "sample_pss": pss})
            bad = [f"{name}/{via}" for via in VIAS if disturbed(self.results[f"{name}/{via}"])]
            if not bad or not self.args.wait_idle:
                return
            if attempt < RETRIES:
                log(f"{', '.join(bad)} disturbed by other work; measuring again")
                self.results.setdefault("retries", {})[name] = attempt + 1

    def run(self) -> int:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purebridge.settings")
        if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
            print(
                "benchmarks/run.py measures the production shape: it needs DATABASE_URL and "
                "REDIS_URL.\nRun it as `make bench` or "
                "`scripts/with-services.sh .venv/bin/python benchmarks/run.py`.",
                file=sys.stderr,
            )
            return 2
        raise_nofile()
        wait_for_quiet(self.args.wait_idle)
        log(
            f"{os.cpu_count()} CPUs, RLIMIT_NOFILE={resource.getrlimit(resource.RLIMIT_NOFILE)}, "
            f"logs in {self.tmp}"
        )
        if self.harness_cpus:
            log(
                f"pinned: web workers on CPUs {sorted(self.gateway_cpus or ())}, the rest on "
                f"{sorted(self.harness_cpus)}"
            )
            for pid in service_pids():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(pid, self.harness_cpus)
        self.fake = start_fake(
            self.procs, self.fake_port, self.tmp / "fake-upstream.log", self.harness_cpus
        )
        self.autovacuum_paused = pause_autovacuum()
        self.keys = seed(self.tmp, self.fake_port, MODELS, KEYS)
        self.gunicorn, self.workers = start_gateway(
            self.procs,
            app=self.args.app,
            workers=self.args.workers,
            port=self.gw_port,
            log_path=self.tmp / "gunicorn.log",
            cpus=self.gateway_cpus,
        )
        self.loadgen = LoadGen(self.procs, self.tmp / "loadgen.log", cpus=self.harness_cpus)
        self.run_phases()
        self.results["gateway_log"] = gateway_warnings(self.tmp / "gunicorn.log")
        summary = self.summary()
        self.print_table(summary)
        self.write_json(summary)
        self.succeeded = True
        return 0

    # -- report -------------------------------------------------------------

    def summary(self) -> dict:
        r = self.results

        def lat(name: str, key: str = "latency_ms") -> dict:
            return (r.get(name) or {}).get(key) or {}

        def added(name: str, p: str, key: str = "latency_ms") -> float | None:
            g, d = lat(f"{name}/gateway", key).get(p), lat(f"{name}/direct", key).get(p)
            return g - d if g is not None and d is not None else None

        s: dict = {
            "nonstream_c1": {
                "gateway_p50_ms": lat("nonstream-c1/gateway").get("p50"),
                "gateway_p99_ms": lat("nonstream-c1/gateway").get("p99"),
                "direct_p50_ms": lat("nonstream-c1/direct").get("p50"),
                "direct_p99_ms": lat("nonstream-c1/direct").get("p99"),
                "added_p50_ms": added("nonstream-c1", "p50"),
                "added_p99_ms": added("nonstream-c1", "p99"),
            },
            "nonstream_c64": {
                "gateway_p50_ms": lat("nonstream-c64/gateway").get("p50"),
                "gateway_p99_ms": lat("nonstream-c64/gateway").get("p99"),
                "direct_p50_ms": lat("nonstream-c64/direct").get("p50"),
                "direct_p99_ms": lat("nonstream-c64/direct").get("p99"),
                "added_p50_ms": added("nonstream-c64", "p50"),
                "added_p99_ms": added("nonstream-c64", "p99"),
                "gateway_rps": r["nonstream-c64/gateway"]["throughput_rps"],
                "direct_rps": r["nonstream-c64/direct"]["throughput_rps"],
                "gateway_cpu_ms_per_request": r["nonstream-c64/gateway"][
                    "gateway_cpu_ms_per_request"
                ],
                "fake_cpu_ms_per_request_via_gateway": r["nonstream-c64/gateway"][
                    "fake_cpu_ms_per_request"
                ],
                "fake_cpu_ms_per_request_direct": r["nonstream-c64/direct"][
                    "fake_cpu_ms_per_request"
                ],
                "loadgen_cpu_ms_per_request_via_gateway": r["nonstream-c64/gateway"][
                    "loadgen_cpu_ms_per_request"
                ],
                "postgres_redis_cpu_ms_per_request_via_gateway": r["nonstream-c64/gateway"][
                    "postgres_redis_cpu_ms_per_request"
                ],
                "machine_busy_pct_gateway": r["nonstream-c64/gateway"]["cpu"]["machine_busy_pct"],
                "busiest_worker_share_pct": r["nonstream-c64/gateway"]["busiest_worker_share_pct"],
                "failures": r["nonstream-c64/gateway"]["failures"]
                + r["nonstream-c64/direct"]["failures"],
            },
            "stream_c64": {
                "upstream": STREAM_UPSTREAM,
                "gateway_ttft_p50_ms": lat("stream-c64/gateway", "ttft_ms").get("p50"),
                "gateway_ttft_p99_ms": lat("stream-c64/gateway", "ttft_ms").get("p99"),
                "direct_ttft_p50_ms": lat("stream-c64/direct", "ttft_ms").get("p50"),
                "direct_ttft_p99_ms": lat("stream-c64/direct", "ttft_ms").get("p99"),
                "added_ttft_p50_ms": added("stream-c64", "p50", "ttft_ms"),
                "added_ttft_p99_ms": added("stream-c64", "p99", "ttft_ms"),
                "gateway_cpu_ms_per_stream": r["stream-c64/gateway"]["gateway_cpu_ms_per_request"],
                "busiest_worker_share_pct": r["stream-c64/gateway"]["busiest_worker_share_pct"],
                "failures": r["stream-c64/gateway"]["failures"]
                + r["stream-c64/direct"]["failures"],
            },
        }
        for name, key in (("slow-streams", "slow_streams"), ("slow-burst", "slow_burst")):
            if f"{name}/gateway" in r:
                s[key] = _slow_summary(r[f"{name}/gateway"], r[f"{name}/direct"])
        s["admission_c1"] = _ab_summary(
            r["admission-c1/gateway"], "limits", "no limits", r["nonstream-c1/direct"]
        )
        if "admission-c64/gateway" in r:
            s["admission_c64"] = {
                "gateway_cpu_ms_per_request_limits": r["admission-c64/gateway"][
                    "gateway_cpu_ms_per_request"
                ],
                "gateway_cpu_ms_per_request_no_limits": r["nonstream-c64/gateway"][
                    "gateway_cpu_ms_per_request"
                ],
                "gateway_rps_limits": r["admission-c64/gateway"]["throughput_rps"],
                "latency_p50_ms_limits": lat("admission-c64/gateway").get("p50"),
                "failures": r["admission-c64/gateway"]["failures"],
            }
        for name, key in (("responses-c1", "responses_c1"), ("responses-c64", "responses_c64")):
            s[key] = _responses_summary(r[f"{name}/gateway"], r[f"{name}/direct"])
            s[key]["upstream"] = RESPONSES_UPSTREAM if key == "responses_c1" else STREAM_UPSTREAM
            if key == "responses_c64":
                s[key]["gateway_cpu_ms_per_stream"] = r[f"{name}/gateway"][
                    "gateway_cpu_ms_per_request"
                ]
        s["targets"] = self.verdicts(s)
        return s

    def verdicts(self, s: dict) -> dict:
        def check(value: float | None, limit: float) -> dict:
            return {
                "value": value,
                "target": limit,
                "met": value is not None and value <= limit,
            }

        v = {
            "gateway_cpu_ms_per_request": check(
                s["nonstream_c64"]["gateway_cpu_ms_per_request"],
                TARGETS["gateway_cpu_ms_per_request"],
            ),
            "added_p50_c1_ms": check(s["nonstream_c1"]["added_p50_ms"], TARGETS["added_p50_c1_ms"]),
            "added_ttft_p50_c64_ms": check(
                s["stream_c64"]["added_ttft_p50_ms"], TARGETS["added_ttft_p50_c64_ms"]
            ),
            "admission_added_p50_c1_ms": check(
                s["admission_c1"]["added_p50_ms"], TARGETS["admission_added_p50_c1_ms"]
            ),
            "translated_minus_passthrough_p50_ms": check(
                s["responses_c1"]["translated_minus_passthrough_p50_ms"],
                TARGETS["translated_minus_passthrough_p50_ms"],
            ),
        }
        slow = s.get("slow_streams")
        if slow:
            v["slow_all_complete"] = {
                "value": slow["completed"],
                "target": slow["streams"],
                "met": slow["completed"] == slow["streams"],
            }
            v["slow_total_p50_ms"] = check(slow["total_p50_ms"], TARGETS["slow_total_p50_ms"])
            v["slow_peak_pss_mb"] = check(slow["peak_worker_pss_mb"], TARGETS["slow_peak_pss_mb"])
        return v

    def print_table(self, s: dict) -> None:
        c1, c64, st = s["nonstream_c1"], s["nonstream_c64"], s["stream_c64"]
        t = s["targets"]

        def mark(name: str) -> str:
            if name not in t:
                return ""
            return "met" if t[name]["met"] else "MISSED"

        rows: list[tuple[str, str, str, str, str]] = []

        def row(label, gw="", direct="", added="", target="") -> None:
            rows.append((label, gw, direct, added, target))

        row("non-streaming, c=1 (ms)")
        row(
            "  latency p50",
            fmt(c1["gateway_p50_ms"]),
            fmt(c1["direct_p50_ms"]),
            signed(c1["added_p50_ms"]),
            f"added <= 2 ms: {mark('added_p50_c1_ms')}",
        )
        row(
            "  latency p99",
            fmt(c1["gateway_p99_ms"]),
            fmt(c1["direct_p99_ms"]),
            signed(c1["added_p99_ms"]),
        )
        row("non-streaming, c=64 (ms)")
        row(
            "  latency p50",
            fmt(c64["gateway_p50_ms"]),
            fmt(c64["direct_p50_ms"]),
            signed(c64["added_p50_ms"]),
        )
        row(
            "  latency p99",
            fmt(c64["gateway_p99_ms"]),
            fmt(c64["direct_p99_ms"]),
            signed(c64["added_p99_ms"]),
        )
        row("  throughput (req/s)", fmt(c64["gateway_rps"], 0), fmt(c64["direct_rps"], 0))
        row(
            "  web worker CPU per request (ms)",
            fmt(c64["gateway_cpu_ms_per_request"], 3),
            "",
            "",
            f"<= 1.5 ms: {mark('gateway_cpu_ms_per_request')}",
        )
        row(
            "  fake upstream CPU per request (ms)",
            fmt(c64["fake_cpu_ms_per_request_via_gateway"], 3),
            fmt(c64["fake_cpu_ms_per_request_direct"], 3),
        )
        row(
            "  PostgreSQL+Redis CPU per request (ms)",
            fmt(c64["postgres_redis_cpu_ms_per_request_via_gateway"], 3),
        )
        if self.args.workers > 1:
            row(
                "  busiest web worker's share of the work (%)",
                fmt(c64["busiest_worker_share_pct"], 0),
            )
        row(f"streaming, 64 streams, {st['upstream']} (ms)")
        row(
            "  TTFT p50",
            fmt(st["gateway_ttft_p50_ms"]),
            fmt(st["direct_ttft_p50_ms"]),
            signed(st["added_ttft_p50_ms"]),
            f"added <= 5 ms: {mark('added_ttft_p50_c64_ms')}",
        )
        row(
            "  TTFT p99",
            fmt(st["gateway_ttft_p99_ms"]),
            fmt(st["direct_ttft_p99_ms"]),
            signed(st["added_ttft_p99_ms"]),
        )
        row("  web worker CPU per stream (ms)", fmt(st["gateway_cpu_ms_per_stream"], 3))
        if self.args.workers > 1:
            row(
                "  busiest web worker's share of the work (%)",
                fmt(st["busiest_worker_share_pct"], 0),
            )
        ad = s["admission_c1"]
        row("admission, c=1: a key with limits vs one without, alternating (ms)")
        for p in ("p50", "p99"):
            row(
                f"  latency {p}, key with RPM+TPM+daily budget",
                fmt(ad[f"limits_{p}_ms"]),
                "",
                signed(ad[f"added_{p}_ms"]),
                f"added <= 0.5 ms: {mark('admission_added_p50_c1_ms')}" if p == "p50" else "",
            )
            row(f"  latency {p}, key without limits", fmt(ad[f"no_limits_{p}_ms"]))
        ad64 = s.get("admission_c64")
        if ad64:
            row(
                "  web worker CPU per request at c=64, with limits (ms)",
                fmt(ad64["gateway_cpu_ms_per_request_limits"], 3),
                "",
                signed(
                    diff(
                        ad64["gateway_cpu_ms_per_request_limits"],
                        ad64["gateway_cpu_ms_per_request_no_limits"],
                    ),
                    3,
                ),
            )
        for key, title in (
            ("responses_c1", "/v1/responses streamed, c=1"),
            ("responses_c64", "/v1/responses streamed, 64 streams"),
        ):
            rs = s[key]
            row(f"{title}, {rs['upstream']} (ms)")
            metrics = ("total", "ttft") if key == "responses_c1" else ("ttft",)
            for metric in metrics:
                for label in ("passed_through", "translated"):
                    row(
                        f"  {metric} p50, {label.replace('_', ' ')}",
                        fmt(rs[f"{label}_{metric}_p50_ms"]),
                        fmt(rs[f"{label}_direct_{metric}_p50_ms"]),
                        signed(rs[f"{label}_added_{metric}_p50_ms"]),
                    )
                primary = key == "responses_c1" and metric == "total"
                row(
                    f"  {metric} p50: translated minus passed through",
                    "",
                    "",
                    signed(rs[f"translated_minus_passthrough_{metric}_p50_ms"]),
                    f"<= 1 ms: {mark('translated_minus_passthrough_p50_ms')}" if primary else "",
                )
            if "gateway_cpu_ms_per_stream" in rs:
                row("  web worker CPU per stream (ms)", fmt(rs["gateway_cpu_ms_per_stream"], 3))
        for key in ("slow_streams", "slow_burst"):
            slow = s.get(key)
            if not slow:
                continue
            primary = key == "slow_streams"
            how = f"opened over {slow['ramp_s']:g} s" if slow["ramp_s"] else "opened all at once"
            row(f"{slow['streams']} slow streams {how}, {slow['upstream']}")
            row(
                "  completed",
                f"{slow['completed']}/{slow['streams']}",
                f"{slow['direct_completed']}/{slow['streams']}",
                "",
                f"all: {mark('slow_all_complete')}" if primary else "",
            )
            row(
                "  peak requests in flight together",
                str(slow["peak_in_flight"]),
                str(slow["direct_peak_in_flight"]),
            )
            row(
                "  peak streams answered and open together",
                str(slow["peak_open_streams"]),
                str(slow["direct_peak_open_streams"]),
            )
            row(
                "  total p50 (ms)",
                fmt(slow["total_p50_ms"], 0),
                fmt(slow["direct_total_p50_ms"], 0),
                signed(diff(slow["total_p50_ms"], slow["direct_total_p50_ms"]), 0),
                f"<= 1500 ms: {mark('slow_total_p50_ms')}" if primary else "",
            )
            row(
                "  total p99 (ms)",
                fmt(slow["total_p99_ms"], 0),
                fmt(slow["direct_total_p99_ms"], 0),
                signed(diff(slow["total_p99_ms"], slow["direct_total_p99_ms"]), 0),
            )
            row(
                "  TTFT p50 (ms)",
                fmt(slow["ttft_p50_ms"], 0),
                fmt(slow["direct_ttft_p50_ms"], 0),
                signed(diff(slow["ttft_p50_ms"], slow["direct_ttft_p50_ms"]), 0),
            )
            row(
                f"  peak web worker PSS (MB; {slow['idle_worker_pss_mb']:.0f} idle)",
                fmt(slow["peak_worker_pss_mb"], 1),
                "",
                "",
                f"<= 400 MB: {mark('slow_peak_pss_mb')}" if primary else "",
            )
            row("  web worker CPU per stream (ms)", fmt(slow["gateway_cpu_ms_per_stream"], 3))
            busiest = slow.get("busiest_half_second") or {}
            if busiest:
                row(
                    "  busiest 0.5 s: web workers / machine CPU (%)",
                    f"{busiest['workers_pct_of_their_cores']:.0f} / "
                    f"{busiest['machine_busy_pct']:.0f}",
                )
        if "slow_streams" not in s:
            row("slow streams: skipped (--skip-slow-streams)")

        header = ("", "gateway", "direct", "added", "target")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        meta = self.meta()
        print()
        print(
            f"PureBridge benchmark — {meta['workers']} web worker(s), {meta['cpus']} CPUs, "
            f"{meta['when']}{' (--quick)' if self.args.quick else ''}"
        )
        if self.args.app != "purebridge.asgi:application":
            print(f"app: {self.args.app}")
        if self.args.limited_key:
            print(
                f"every phase with the key with limits: RPM {LIMITED_KEY_RPM:,}, TPM "
                f"{LIMITED_KEY_TPM:,}, daily budget ${LIMITED_KEY_DAILY_USD} (--limited-key)"
            )
        line = "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) if i < 4 else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
        print(line)
        print("-" * len(line))
        for r_ in rows:
            print(
                "  ".join(
                    v.ljust(w) if i in (0, 4) else v.rjust(w)
                    for i, (v, w) in enumerate(zip(r_, widths, strict=True))
                )
            )
        failures = {
            k: v["failures"]
            for k, v in self.results.items()
            if isinstance(v, dict) and v.get("failures")
        }
        if failures:
            print(f"\nfailed requests per phase: {failures}")
        for warning in self.warnings():
            print(f"WARNING: {warning}")
        for message, count in list(self.results.get("gateway_log", {}).items())[:5]:
            print(f"the gateway logged {count}x: {message}")
        print()

    def warnings(self) -> list[str]:
        out = list(self.results.get("warnings", []))
        for name, result in self.results.items():
            if not isinstance(result, dict) or "cpu" not in result or name.startswith("warmup"):
                continue
            if disturbed(result):
                out.append(
                    f"{name}: {result['cpu']['other']['pct_of_machine']:.0f}% of the machine was "
                    "busy with processes outside this benchmark; its numbers are disturbed"
                )
        return out

    def meta(self) -> dict:
        return {
            "when": dt.datetime.now().isoformat(timespec="seconds"),
            "workers": self.args.workers,
            "cpus": os.cpu_count(),
            "quick": self.args.quick,
            "python": platform.python_version(),
            "gunicorn_conf_py": (ROOT / "gunicorn.conf.py").exists(),
            "app": self.args.app,
            "limited_key": self.args.limited_key,
            "pinned": {
                "gateway_cpus": sorted(self.gateway_cpus or ()),
                "harness_cpus": sorted(self.harness_cpus or ()),
            },
            "upstreams": MODELS,
            "counts": vars(self.counts),
        }

    def write_json(self, summary: dict) -> None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "meta": self.meta(),
            "summary": summary,
            "warnings": self.warnings(),
            "phases": self.results,
        }
        RESULTS.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        log(f"wrote {RESULTS.relative_to(ROOT)}")

    # -- teardown -----------------------------------------------------------

    def close(self) -> None:
        if self.loadgen is not None:
            self.loadgen.quit()
        self.procs.stop_all()
        gunicorn_log = self.tmp / "gunicorn.log"
        errors = gateway_errors(gunicorn_log)
        if errors:
            log(f"{len(errors)} error line(s) in {gunicorn_log}; first: {errors[0]}")
            self.succeeded = False
        if self.succeeded:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"logs kept in {self.tmp}")


def _slow_summary(g: dict, d: dict) -> dict:
    return {
        "upstream": SLOW_UPSTREAM,
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


def _ab_summary(phase: dict, a: str, b: str, direct: dict) -> dict:
    """Two variants of one gateway phase: variant a's latency minus b's."""
    va, vb = phase["variants"][a], phase["variants"][b]
    out: dict = {"direct_p50_ms": direct["latency_ms"]["p50"]}
    for p in ("p50", "p99"):
        out[f"{_key(a)}_{p}_ms"] = va["latency_ms"][p]
        out[f"{_key(b)}_{p}_ms"] = vb["latency_ms"][p]
        out[f"added_{p}_ms"] = diff(va["latency_ms"][p], vb["latency_ms"][p])
    out["failures"] = phase["failures"]
    return out


def _responses_summary(g: dict, d: dict) -> dict:
    """Passed through vs translated, each against its own upstream call direct."""
    out: dict = {"failures": g["failures"] + d["failures"]}
    for label in ("passed through", "translated"):
        gv, dv = g["variants"][label], d["variants"][label]
        k = _key(label)
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


def _key(label: str) -> str:
    return label.replace(" ", "_")


def main() -> int:
    parser = argparse.ArgumentParser(description="PureBridge gateway vs fake upstream direct.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn web workers (default 2)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument(
        "--skip-slow-streams", action="store_true", help="skip the 1,000 slow streams"
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before starting, wait up to SECONDS for other work on the machine to finish",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the web workers to their own CPUs and the fake upstream, load generator, "
        "PostgreSQL and Redis to the others (needs more CPUs than --workers)",
    )
    parser.add_argument(
        "--limited-key",
        action="store_true",
        help="send every phase with the key that has limits (never reached), so that every "
        "request also runs the Redis admission step (the admission phases always compare both)",
    )
    parser.add_argument(
        "--app",
        default="purebridge.asgi:application",
        help="ASGI application gunicorn serves (for experiments; default %(default)s)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run py-spy on every web worker during the gateway phases (c=1, c=64, streams, "
        "slow streams) and write raw stacks and a text summary to DIR; slows the gateway",
    )
    parser.add_argument(
        "--profile-native", action="store_true", help="with --profile: py-spy --native"
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    def terminate(signum, frame):
        raise KeyboardInterrupt

    # Even when started in the background (where the shell ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    bench = Bench(args)
    try:
        return bench.run()
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    except RuntimeError as exc:
        log(f"FAILED: {exc}")
        bench.procs.print_log_tails()
        return 1
    finally:
        # Ignore a second Ctrl-C while cleaning up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
