"""--profile: py-spy on every web worker during a gateway phase, and its summary."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from harness.base import PYTHON, log
from harness.procs import Procs
from pyspy_summary import report


def start_profilers(
    procs: Procs, name: str, workers: list[int], out_dir: Path, native: bool
) -> list[subprocess.Popen]:
    py_spy = Path(PYTHON).parent / "py-spy"
    if not py_spy.exists():
        raise RuntimeError(f"--profile needs py-spy: {PYTHON} -m pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _stem(name)
    started = []
    for pid in workers:
        argv = [str(py_spy), "record", "-p", str(pid), "-f", "raw", "-r", "200"]
        argv += ["--threads", "-o", str(out_dir / f"{stem}-{pid}.txt")]
        # --native needs to pause the process for each sample; otherwise do not.
        argv.append("--native" if native else "--nonblocking")
        started.append(procs.spawn("py-spy", argv, out_dir / f"{stem}-{pid}.log"))
    time.sleep(1.0)  # let py-spy attach before the measured part starts
    for proc, pid in zip(started, workers, strict=True):
        if proc.poll() is not None:
            log_text = (out_dir / f"{stem}-{pid}.log").read_text(errors="replace").strip()
            raise RuntimeError(f"py-spy on {pid} exited: {log_text}")
    return started


def stop_profilers(
    name: str, profilers: list[subprocess.Popen], workers: list[int], out_dir: Path
) -> None:
    for proc in profilers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # py-spy writes its file on Ctrl-C
    for proc in profilers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    stem = _stem(name)
    files = [out_dir / f"{stem}-{pid}.txt" for pid in workers]
    files = [f for f in files if f.exists()]
    text = report(files, top=40) if files else "py-spy wrote nothing"
    (out_dir / f"{stem}.summary.txt").write_text(text + "\n")
    log(f"profile of {name}: {out_dir / (stem + '.summary.txt')}")


def _stem(name: str) -> str:
    return name.replace("/", "-")
