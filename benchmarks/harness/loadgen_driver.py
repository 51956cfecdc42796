"""Driving benchmarks/loadgen.py, in its own process, over its stdin and stdout."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.base import BENCH_DIR, PYTHON
from harness.procs import Procs


class LoadGen:
    def __init__(self, procs: Procs, log: Path, cpus: set[int] | None = None) -> None:
        self.proc = procs.spawn(
            "loadgen",
            [PYTHON, str(BENCH_DIR / "loadgen.py")],
            log,
            cpus=cpus,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, name="loadgen-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def send(self, obj: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, kind: str, timeout: float, tick: Callable[[], None] | None = None) -> dict:
        """The next event, calling `tick()` about every 100 ms while waiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if tick is not None:
                tick()
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event.get("event") == kind:
                return event
            raise RuntimeError(f"load generator: expected {kind}, got {event}")
        raise RuntimeError(f"load generator: no {kind} within {timeout:.0f}s")

    def quit(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send({"op": "quit"})
