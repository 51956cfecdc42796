"""One run: its processes and state, and how a phase is measured."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import phases
from harness import report
from harness.asks import PASSED_THROUGH, RANDOM_KEY, Ask, Background, loadgen_variant
from harness.base import HOST, ROOT, VIAS, log
from harness.loadgen_driver import LoadGen
from harness.machine import CpuWindow, children, service_pids, wait_for_calm, wait_for_quiet
from harness.measure import PssSampler, add_cpu, disturbed, log_phase
from harness.procs import Procs, free_port, raise_nofile
from harness.profiling import start_profilers, stop_profilers
from harness.seed import (
    ANTHROPIC_PROVIDER,
    RESPONSES_PROVIDER,
    pause_autovacuum,
    seed,
    vacuum,
)
from harness.servers import gateway_errors, gateway_warnings, start_fake, start_gateway

RETRIES = 2  # with --wait-idle: how often a disturbed pair of phases is measured again


@dataclass
class Counts:
    warmup: int
    c1: int
    c64: int
    streams: int
    slow: int
    flood: int


FULL = Counts(warmup=300, c1=500, c64=3000, streams=640, slow=1000, flood=5000)
QUICK = Counts(warmup=60, c1=100, c64=500, streams=128, slow=200, flood=1000)


def pinned_cpus(args: argparse.Namespace) -> tuple[set[int] | None, set[int] | None]:
    """--pin: (the web workers' cores, everything else's); without it, (None, None)."""
    if not args.pin:
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) <= args.workers:
        raise SystemExit(
            f"--pin needs more than {args.workers} CPUs (one per web worker and at "
            f"least one for the rest); this machine lets us use {len(allowed)}"
        )
    return set(allowed[: args.workers]), set(allowed[args.workers :])


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
        self.background_loadgen: LoadGen | None = None  # started by the first background
        self.families = phases.selected(args.phases)
        self.models = phases.models()
        self.keys: dict[str, str] = {}  # secrets by name (seed.KEYS and the phases' own)
        self.workers: list[int] = []
        self.gateway_cpus, self.harness_cpus = pinned_cpus(args)
        self.results: dict = {}
        self.autovacuum_paused = False
        self.succeeded = False  # a failed run keeps its logs in self.tmp

    def run(self) -> int:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purebridge.settings")
        # Accounts never credited are served without a balance; the balance
        # phase credits one of its own (seed.Key.credit_usd).
        os.environ["PUREBRIDGE_BILLING_MODE"] = "unmetered"
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
        self.start()
        self.warm_up()
        for family in self.families:
            family.run(self)
        self.report()
        self.succeeded = True
        return 0

    def start(self) -> None:
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
        self.keys = seed(self.tmp, self.fake_port, self.models, phases.keys(), phases.kinds())
        self.gunicorn, self.workers = start_gateway(
            self.procs,
            app=self.args.app,
            workers=self.args.workers,
            port=self.gw_port,
            log_path=self.tmp / "gunicorn.log",
            cpus=self.gateway_cpus,
        )
        self.loadgen = LoadGen(self.procs, self.tmp / "loadgen.log", cpus=self.harness_cpus)

    def warm_up(self) -> None:
        """Every phase's warm-up, direct then through the gateway, before any is measured."""
        warmups = [w for family in self.families for w in family.warmups]
        for via in VIAS:
            for w in warmups:
                self.phase(
                    f"{w.name}/{via}",
                    via,
                    list(w.asks),
                    stream=w.stream,
                    concurrency=16,
                    requests=self.counts.warmup
                    if not w.stream
                    else max(self.counts.warmup // 5, 16),
                    warmup=0,
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
        profile: bool = False,
        background: Background | None = None,
    ) -> dict:
        """One phase through `via`: warm up, then measure `requests` requests made
        `concurrency` at a time, taking turns among `asks`. `profile`: under py-spy
        with --profile (through the gateway only). With a `background`, a second
        load generator (its own process, as another client's would be) makes
        its requests alongside, and the phase's own go on until it is done,
        whatever `requests` says (its figures are the result's "background")."""
        assert self.loadgen is not None
        if via == "gateway" and self.autovacuum_paused:
            vacuum()
        wait_for_calm()
        behind = None
        if background is not None:
            behind = self.start_background(f"{name}/background", via, background, deadline_s)
        self.loadgen.send(
            {
                "op": "phase",
                "name": name,
                "variants": [self.variant(via, ask, stream) for ask in asks],
                "stream": stream,
                "concurrency": concurrency,
                "requests": 0 if background else requests,  # 0: until "stop"
                "warmup": warmup,
                "timeout_s": timeout_s,
                "deadline_s": deadline_s,
                "ramp_s": ramp_s,
            }
        )
        self.loadgen.wait("ready", deadline_s + 60)
        if behind is not None:
            behind.wait("ready", 60)
        self.check_workers()
        profile_dir: Path | None = self.args.profile if via == "gateway" and profile else None
        result = self.measure(name, deadline_s + 60, settle_s, sample_pss, profile_dir, behind)
        self.check_workers()
        log_phase(name, result)
        self.results[name] = result
        return result

    def measure(
        self,
        name: str,
        timeout: float,
        settle_s: float,
        sample_pss: bool,
        profile_dir: Path | None,
        behind: LoadGen | None = None,
    ) -> dict:
        """From the load generator's "ready" to its "done": its result, with the CPU
        of every process between the two (and the web workers' PSS). With a
        background load generator (`behind`), the phase stops when it is done."""
        assert self.loadgen is not None
        profilers = []
        if profile_dir is not None:
            native = self.args.profile_native
            profilers = start_profilers(self.procs, name, self.workers, profile_dir, native)
        window = self.cpu_window(profilers)
        sampler = PssSampler(self.workers) if sample_pss else None
        tick = sampler.sample if sampler else None
        window.start()
        if behind is not None:
            behind.send({"op": "go"})
        self.loadgen.send({"op": "go"})
        try:
            background = None
            if behind is not None:
                background = behind.wait("done", timeout, tick=tick)["result"]
                self.loadgen.send({"op": "stop"})
            done = self.loadgen.wait("done", timeout, tick=tick)
            # Usage records are written by a thread every 0.2 s: include that work.
            if settle_s:
                time.sleep(settle_s)
            cpu = window.stop()
        finally:
            if profilers and profile_dir is not None:
                stop_profilers(name, profilers, self.workers, profile_dir)
        result = done["result"]
        add_cpu(result, cpu)
        if background is not None:
            result["background"] = background
        if sampler:
            sampler.add_to(result)
        return result

    def start_background(
        self, name: str, via: str, background: Background, deadline_s: float
    ) -> LoadGen:
        """The background load generator, warmed up to its "ready" for `background`."""
        if self.background_loadgen is None:
            log_path = self.tmp / "loadgen-background.log"
            self.background_loadgen = LoadGen(self.procs, log_path, cpus=self.harness_cpus)
        self.background_loadgen.send(
            {
                "op": "phase",
                "name": name,
                "variants": [self.variant(via, ask, False) for ask in background.asks],
                "stream": False,
                "concurrency": background.concurrency,
                "requests": background.requests,
                "warmup": 0,
                "deadline_s": deadline_s,
            }
        )
        return self.background_loadgen

    def variant(self, via: str, ask: Ask, stream: bool) -> dict:
        """What the load generator sends for `ask`: to PureBridge, or the
        request PureBridge makes of the upstream, sent to the fake directly."""
        upstream, provider = self.models[ask.model]
        if via == "gateway":
            key = ask.key or ("limited" if self.args.limited_key else "plain")
            base = f"http://{HOST}:{ask.port or self.gw_port}/v1"
            secret = "made-up" if key == RANDOM_KEY else self.keys[key]
            return loadgen_variant(ask, base, ask.model, secret, ask.api, stream)
        # Each upstream gets the API it speaks: a chat-only one what PureBridge
        # translates a Responses or Messages request into (embeddings are
        # passed through as they came).
        passed = ask.api if ask.api in PASSED_THROUGH else "chat"
        api = {RESPONSES_PROVIDER: ask.api, ANTHROPIC_PROVIDER: "messages"}.get(provider, passed)
        base = f"http://{HOST}:{self.fake_port}/v1"
        return loadgen_variant(ask, base, upstream, "bench", api, stream)

    def cpu_window(self, profilers: list[subprocess.Popen]) -> CpuWindow:
        assert self.fake is not None and self.gunicorn is not None and self.loadgen is not None
        fake_pid, master = self.fake.pid, self.gunicorn.pid
        loadgens = [gen.proc.pid for gen in (self.loadgen, self.background_loadgen) if gen]
        return CpuWindow(
            {
                "gateway_workers": lambda: list(self.workers),
                "gunicorn_master": lambda: [master],
                "fake_upstream": lambda: [fake_pid],
                "loadgen": lambda: loadgens,
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

    def report(self) -> None:
        self.results["gateway_log"] = gateway_warnings(self.tmp / "gunicorn.log")
        families = phases.reported(self.families)
        summary = report.summarise(self.results, families)
        meta = self.meta()
        report.print_report(summary, self.results, meta, families)
        report.write_json(meta, summary, self.results)

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
            "upstreams": self.models,
            "counts": vars(self.counts),
            "phases": [family.name for family in self.families],
        }

    def close(self) -> None:
        for loadgen in (self.loadgen, self.background_loadgen):
            if loadgen is not None:
                loadgen.quit()
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
