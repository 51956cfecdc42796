"""Paths, the one address, and how every part of the harness prints: the log line and numbers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH_DIR = ROOT / "benchmarks"
RESULTS = BENCH_DIR / "results" / "latest.json"
PYTHON = sys.executable
HOST = "127.0.0.1"  # the only address the harness ever talks to
CLK_TCK = os.sysconf("SC_CLK_TCK")
OTHER_LOAD_WARN_PCT = 10.0  # CPU of processes outside the benchmark, % of the machine
VIAS = ("direct", "gateway")  # a scenario against the fake directly first, then through PureBridge


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None
