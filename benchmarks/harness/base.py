"""Paths, the one address, and the log line every part of the harness prints."""

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


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
