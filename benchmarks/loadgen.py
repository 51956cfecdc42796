"""The load generator of benchmarks/run.py: an aiohttp client on uvloop.

It runs in its own process, so its CPU is never counted as the gateway's, and
is driven by run.py over stdin/stdout, one JSON object per line:

    -> {"op": "phase", "name": ..., "variants": [{"label": ..., "url": ...,
        "headers": {...}, "body": {...}, "format": "chat" | "responses" | "embeddings" | "messages",
        "expect_status": 200, "random_key": {"prefix": ..., "length": L}}, ...],
        "stream": bool, "concurrency": C, "requests": N, "warmup": W,
        "timeout_s": T, "deadline_s": D, "ramp_s": R}
    <- {"event": "ready", "name": ...}          warm-up done, connections open
    -> {"op": "go"}
    -> {"op": "stop"}                           only when N is 0: stop now
    <- {"event": "done", "name": ..., "result": {...}}
    -> {"op": "quit"}

A phase keeps C requests in flight until N have been made (C == N: all at
once; with R > 0 the C clients start evenly spread over R seconds). The warm-up runs W requests first on the same connection pool, so
the measured part starts with open keep-alive connections; run.py samples CPU
between "ready" and "go". Every request has a timeout and every phase a
deadline, so nothing here can run unbounded.

With several variants (an A/B comparison in one phase), request k of the
phase is variant k mod V: the variants take turns, so whatever disturbs the
machine disturbs them alike. Each variant's latencies are reported apart.
A variant answered with its `expect_status` (default 200) counts as answered;
one with `random_key` sends a new made-up key (the prefix and L random letters
or digits) with every request.

With N = 0 the phase goes on until "stop" (run.py sends it when another
load generator, making a load alongside, is done).
A stream is complete at `data: [DONE]` (chat completions) or at the
`response.completed` event (Responses API); its first content is the first
non-empty `delta.content` or `response.output_text.delta`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import string
import sys
import time

import aiohttp
import orjson
import uvloop

from harness.procs import raise_nofile

# Per stream format: the bytes that end a complete stream.
STREAM_END = {
    "chat": b"data: [DONE]",
    "responses": b"event: response.completed",
    "messages": b"event: message_stop",
}
# Formats answered whole only.
NEVER_STREAMED = frozenset(("embeddings",))
MAX_ERROR_SAMPLES = 5
KEY_ALPHABET = string.ascii_letters + string.digits


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": values[-1] if values else None,
        "min": values[0] if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


class Variant:
    """One kind of request of a phase, and what was measured of it."""

    def __init__(self, spec: dict) -> None:
        self.label: str = spec.get("label", "main")
        self.url: str = spec["url"]
        self.headers: dict = spec["headers"]
        self.payload: bytes = orjson.dumps(spec["body"])
        self.format: str = spec.get("format", "chat")
        if self.format not in STREAM_END and self.format not in NEVER_STREAMED:
            raise ValueError(f"unknown format {self.format!r}")
        self.expect: int = int(spec.get("expect_status", 200))
        random_key = spec.get("random_key")
        self.key_prefix: str | None = random_key["prefix"] if random_key else None
        self.key_length: int = int(random_key["length"]) if random_key else 0
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.chunks: list[int] = []
        self.failures = 0

    def request_headers(self) -> dict:
        if self.key_prefix is None:
            return self.headers
        key = self.key_prefix + "".join(random.choices(KEY_ALPHABET, k=self.key_length))
        return {**self.headers, "Authorization": f"Bearer {key}"}

    def result(self, stream: bool) -> dict:
        return {
            "ok": len(self.latencies),
            "failures": self.failures,
            "latency_ms": summarise(self.latencies),
            "ttft_ms": summarise(self.ttfts) if stream else None,
        }


class Phase:
    def __init__(self, spec: dict) -> None:
        self.name: str = spec["name"]
        self.variants = [Variant(v) for v in spec["variants"]]
        self.stream: bool = bool(spec.get("stream"))
        self.concurrency: int = int(spec["concurrency"])
        self.requests: int = int(spec["requests"])
        self.warmup: int = int(spec.get("warmup", 0))
        self.timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout_s", 60)))
        self.deadline_s: float = float(spec.get("deadline_s", 300))
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.chunks: list[int] = []
        self.failures = 0
        self.statuses: dict[str, int] = {}
        self.error_samples: list[str] = []
        self.ramp_s: float = float(spec.get("ramp_s", 0))
        self.open_streams = 0  # answered (headers in), not finished
        self.peak_open = 0
        self.in_flight = 0  # sent, not finished
        self.peak_in_flight = 0
        self.stop: asyncio.Event | None = None  # N = 0: until this is set

    def _fail(self, variant: Variant, why: str) -> None:
        self.failures += 1
        variant.failures += 1
        self.statuses[why] = self.statuses.get(why, 0) + 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{variant.label}: {why}")

    def _ok(self, variant: Variant, latency_s: float, ttft_s: float | None, chunks: int) -> None:
        for target in (self, variant):
            target.latencies.append(latency_s * 1000)
            if ttft_s is not None:
                target.ttfts.append(ttft_s * 1000)
                target.chunks.append(chunks)

    async def one(self, session: aiohttp.ClientSession, variant: Variant, record: bool) -> None:
        started = time.perf_counter()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            async with session.post(
                variant.url,
                data=variant.payload,
                headers=variant.request_headers(),
                timeout=self.timeout,
            ) as response:
                if response.status != variant.expect:
                    body = await response.read()
                    if record:
                        self._fail(variant, f"HTTP {response.status}: {body[:200]!r}")
                    return
                if not self.stream or variant.expect != 200:
                    body = await response.read()
                    elapsed = time.perf_counter() - started
                    if not body.startswith(b"{"):
                        if record:
                            self._fail(variant, f"not JSON: {body[:80]!r}")
                        return
                    if record:
                        self._ok(variant, elapsed, None, 0)
                    return
                self.open_streams += 1
                self.peak_open = max(self.peak_open, self.open_streams)
                try:
                    ttft, chunks, complete = await _read_stream(
                        response.content, started, variant.format
                    )
                finally:
                    self.open_streams -= 1
                elapsed = time.perf_counter() - started
                if not complete:
                    if record:
                        self._fail(variant, "stream ended before its final event")
                    return
                if ttft is None:
                    if record:
                        self._fail(variant, "stream had no content chunk")
                    return
                if record:
                    self._ok(variant, elapsed, ttft, chunks)
        except TimeoutError:
            if record:
                self._fail(variant, "client timeout")
        except (aiohttp.ClientError, OSError) as exc:
            if record:
                self._fail(variant, f"{type(exc).__name__}: {exc}"[:200])
        finally:
            self.in_flight -= 1

    async def run(self, session: aiohttp.ClientSession, total: int, record: bool) -> float:
        """Keep `concurrency` requests in flight until `total` were made (with
        `self.stop` when recording, until it is set); wall seconds."""
        issued = 0
        self.peak_open = self.open_streams
        self.peak_in_flight = self.in_flight
        stop = self.stop if record else None

        def more() -> bool:
            return not stop.is_set() if stop is not None else issued < total

        workers_n = self.concurrency if stop is not None else min(self.concurrency, total)

        async def worker(k: int) -> None:
            nonlocal issued
            if record and self.ramp_s:
                await asyncio.sleep(k * self.ramp_s / workers_n)
            while more():
                variant = self.variants[issued % len(self.variants)]
                issued += 1
                await self.one(session, variant, record)

        started = time.perf_counter()
        workers = [asyncio.create_task(worker(k)) for k in range(workers_n)]
        try:
            async with asyncio.timeout(self.deadline_s):
                await asyncio.gather(*workers)
        except TimeoutError:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if record:
                missing = (issued if stop else total) - len(self.latencies) - self.failures
                for k in range(max(missing, 0)):
                    self._fail(self.variants[k % len(self.variants)], "phase deadline reached")
        if stop is not None:
            self.requests = issued
        return time.perf_counter() - started

    def result(self, wall: float) -> dict:
        ok = len(self.latencies)
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "ok": ok,
            "failures": self.failures,
            "failure_kinds": self.statuses,
            "error_samples": self.error_samples,
            "wall_s": wall,
            "ramp_s": self.ramp_s,
            "peak_open_streams": self.peak_open if self.stream else None,
            "peak_in_flight": self.peak_in_flight,
            "throughput_rps": ok / wall if wall > 0 else None,
            "latency_ms": summarise(self.latencies),
            "ttft_ms": summarise(self.ttfts) if self.stream else None,
            "chunks_per_stream": summarise([float(c) for c in self.chunks])
            if self.stream
            else None,
            "variants": {v.label: v.result(self.stream) for v in self.variants},
        }


async def _read_stream(
    content: aiohttp.StreamReader, started: float, fmt: str
) -> tuple[float | None, int, bool]:
    """Read an SSE body as it arrives: (time to first content, events, complete).

    Reads whatever bytes are there (no per-line Python work), and parses JSON
    only until the first content chunk, so the client stays cheap next to the
    servers it measures.
    """
    end = STREAM_END[fmt]
    has_content = {"chat": _has_content, "responses": _has_text_delta}.get(fmt, _has_text_block)
    ttft: float | None = None
    events = 0
    pending = b""  # unparsed bytes, kept only until the first content chunk
    tail = b""  # the end of the previous read, for an end marker split across reads
    async for data in content.iter_any():
        events += data.count(b"\n\n")
        if ttft is None:
            pending += data
            *complete, pending = pending.split(b"\n\n")
            for event in complete:
                if has_content(event):
                    ttft = time.perf_counter() - started
                    pending = b""
                    break
        window = tail + data
        if end in window:
            return ttft, events - 1, True
        tail = window[-len(end) :]
    return ttft, events, False


def _has_content(event: bytes) -> bool:
    """True when a chat completions chunk carries a non-empty delta.content."""
    if not event.startswith(b"data: {") or b'"content"' not in event:
        return False
    try:
        chunk = orjson.loads(event[6:])
    except orjson.JSONDecodeError:
        return False
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            return True
    return False


def _has_text_delta(event: bytes) -> bool:
    """True for a Responses API `response.output_text.delta` with text in it."""
    if not event.startswith(b"event: response.output_text.delta\n"):
        return False
    data = event.split(b"\ndata: ", 1)
    try:
        return bool(len(data) == 2 and orjson.loads(data[1]).get("delta"))
    except orjson.JSONDecodeError:
        return False


def _has_text_block(event: bytes) -> bool:
    """True for an Anthropic `content_block_delta` with text in it."""
    if not event.startswith(b"event: content_block_delta\n"):
        return False
    data = event.split(b"\ndata: ", 1)
    try:
        return bool(len(data) == 2 and (orjson.loads(data[1]).get("delta") or {}).get("text"))
    except orjson.JSONDecodeError:
        return False


async def read_command() -> dict:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        return {"op": "quit"}
    return json.loads(line)


async def wait_for_stop(stop: asyncio.Event) -> None:
    command = await read_command()
    if command["op"] != "stop":
        emit({"event": "error", "message": f"expected stop, got {command['op']!r}"})
    stop.set()


async def main() -> None:
    while True:
        command = await read_command()
        if command["op"] == "quit":
            return
        if command["op"] != "phase":
            emit({"event": "error", "message": f"unknown op {command['op']!r}"})
            continue
        phase = Phase(command)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
        async with aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=None),
        ) as session:
            if phase.warmup:
                await phase.run(session, phase.warmup, record=False)
            emit({"event": "ready", "name": phase.name})
            go = await read_command()
            if go["op"] != "go":
                return
            stopping = None
            if not phase.requests:
                phase.stop = asyncio.Event()
                stopping = asyncio.create_task(wait_for_stop(phase.stop))
            wall = await phase.run(session, phase.requests, record=True)
            if stopping is not None:
                await stopping
            emit({"event": "done", "name": phase.name, "result": phase.result(wall)})


if __name__ == "__main__":
    raise_nofile()
    uvloop.run(main())
