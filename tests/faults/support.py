"""What the fault tests control: a PostgreSQL of their own (stopped, started,
frozen with SIGSTOP), a port that accepts connections and never answers, and
PureBridge under gunicorn pointed at them, with short deadlines.

Nothing here touches the suite's shared PostgreSQL and Redis: a test that
stops a database stops its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import orjson
import psycopg

from tests.helpers import USER_HI, wait_for
from tests.limits.support import Gunicorn, free_port

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
AS_ROOT = os.geteuid() == 0


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if AS_ROOT else command


class Postgres:
    """A PostgreSQL cluster of a test's own on a port of its own."""

    def __init__(self) -> None:
        # Not under pytest's tmp folder: it is private to root, and the server
        # runs as postgres. with-services.sh's folder is removed at its end.
        parent = os.environ.get("PUREBRIDGE_TEST_SERVICES_DIR") or None
        self.directory = Path(tempfile.mkdtemp(prefix="faults-pg-", dir=parent))
        self.directory.chmod(0o755)
        self.data = self.directory / "data"
        self.port = free_port()
        self.frozen: list[int] = []

    @property
    def url(self) -> str:
        return f"postgres://purebridge@127.0.0.1:{self.port}/purebridge"

    def _run(self, *command: str) -> None:
        subprocess.run(_as_postgres(list(command)), check=True, capture_output=True, timeout=60)

    def create(self) -> Postgres:
        if AS_ROOT:
            shutil.chown(self.directory, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "purebridge", "--auth=trust")
        self.start()
        self._run(
            str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
            "purebridge", "purebridge",
        )  # fmt: skip
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "log"),
            "-w", "-o", options, "start",
        )  # fmt: skip

    def stop(self) -> None:
        """A fast shutdown: every session is ended (AdminShutdown) at once."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP the server and every backend: connections stay open, nothing
        answers, and a new connection is accepted by the kernel and then hangs."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        self.frozen = [postmaster, *_children(postmaster)]
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def remove(self) -> None:
        self.thaw()
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(
            self.url.replace("postgres://", "postgresql://"), connect_timeout=5
        ) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def manage(self, redis_url: str, *args: str, stdin: str = "") -> str:
        """`manage.py ARGS` on this database; its stdout."""
        env = {**os.environ, "DATABASE_URL": self.url, "REDIS_URL": redis_url}
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Unanswering:
    """A port that accepts every connection and never answers: a hung Redis,
    or a proxy in front of a dead one. Closing it ends the connections."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted: list[socket.socket] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(128)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


# The deadlines the fault tests' PureBridge runs with: short, so a test takes
# seconds (README "When PostgreSQL or Redis is down" names each setting).
DEADLINES = {
    "PUREBRIDGE_DB_TIMEOUT": "1",
    "DATABASE_CONNECT_TIMEOUT": "2",
    "DATABASE_STATEMENT_TIMEOUT": "2",
    "DATABASE_POOL_TIMEOUT": "1",
    "REDIS_TIMEOUT": "0.5",
    "REDIS_CONNECT_TIMEOUT": "0.5",
    # Cached keys and catalogue are read again after a second: a request made
    # during an outage meets an expired cache entry.
    "PUREBRIDGE_CACHE_TTL": "1",
    # The console's cookies over plain HTTP, as a browser on loopback would send them.
    "SESSION_COOKIE_SECURE": "false",
}
# The longest an answer may take under these deadlines, with room for a busy machine.
API_DEADLINE = 3.0
HEALTH_DEADLINE = 1.0


@contextlib.contextmanager
def gateway(folder: Path, postgres: Postgres, redis_url: str, **env: str) -> Iterator[Gunicorn]:
    """One gunicorn worker on `postgres` and `redis_url` with DEADLINES (and `env`)."""
    server = Gunicorn(folder / "gunicorn.log", redis_url=redis_url, workers=1)
    server.env.update({"DATABASE_URL": postgres.url, **DEADLINES, **env})
    server.start()
    try:
        yield server
    finally:
        server.stop()


SEED = """
import json, sys
from decimal import Decimal
from accounts.models import User
from gateway.models import CatalogModel, Provider, Route
from keys.services import key_create

spec = json.loads(sys.stdin.read())
provider, _ = Provider.objects.get_or_create(
    name="fake", defaults={"kind": "openai", "base_url": spec["base_url"]}
)
for public_id, upstream in spec["models"].items():
    model, made = CatalogModel.objects.get_or_create(
        public_id=public_id,
        defaults={"input_per_mtok": Decimal("1000"), "cached_input_per_mtok": Decimal("100"),
                  "output_per_mtok": Decimal("10000")},
    )
    if made:
        Route.objects.create(model=model, provider=provider, upstream_model=upstream)
user = User.objects.filter(email="faults@example.com").first() or User.objects.create_user(
    "faults@example.com", "pw-faults-1234"
)
secrets = []
for limits in spec["keys"]:
    limits = {k: Decimal(v) if k.endswith("_usd") else v for k, v in limits.items()}
    key, secret = key_create(account=user.account, name="fault", **limits)
    secrets.append({"id": key.id, "account_id": key.account_id, "secret": secret})
print("SEED" + json.dumps(secrets))
"""


@dataclass
class Key:
    id: int
    account_id: int
    secret: str


def seed(postgres: Postgres, redis_url: str, base_url: str, keys: list[dict]) -> list[Key]:
    """Models `flat` and `flat-slow` on the fake upstream, and keys with these limits."""
    spec = {
        "base_url": base_url,
        "models": {"flat": "fake?tokens=3", "flat-slow": "fake?tokens=3&first_ms=300"},
        "keys": keys,
    }
    out = postgres.manage(redis_url, "shell", "-c", SEED, stdin=json.dumps(spec))
    made = json.loads(out.rsplit("SEED", 1)[1])
    return [Key(k["id"], k["account_id"], k["secret"]) for k in made]


@dataclass
class Answer:
    status: int
    seconds: float
    body: dict
    headers: dict


def ask(url: str, key: Key, model: str = "flat", timeout: float = 30, **fields) -> Answer:
    """One chat completion: its status, how long it took, its body."""
    started = time.monotonic()
    body = {"model": model, "messages": USER_HI, "max_tokens": 5, **fields}
    try:
        response = httpx2.post(
            f"{url}/v1/chat/completions",
            content=orjson.dumps(body),
            headers={"Authorization": f"Bearer {key.secret}", "Content-Type": "application/json"},
            timeout=timeout,
        )
    except httpx2.TimeoutException:
        return Answer(0, time.monotonic() - started, {}, {})
    try:
        payload = response.json()
    except ValueError:
        payload = {"raw": response.text[:200]}
    return Answer(response.status_code, time.monotonic() - started, payload, dict(response.headers))


def get(url: str, path: str, timeout: float = 30) -> tuple[int, float, httpx2.Response | None]:
    started = time.monotonic()
    try:
        response = httpx2.get(f"{url}{path}", timeout=timeout)
    except httpx2.TimeoutException:
        return 0, time.monotonic() - started, None
    return response.status_code, time.monotonic() - started, response


def health(url: str) -> tuple[int, float, dict]:
    status, seconds, response = get(url, "/health", timeout=15)
    return status, seconds, response.json() if response is not None else {}


def request_ids(postgres: Postgres, key: Key) -> list[str]:
    rows = postgres.query("SELECT request_id FROM usage_usagerecord WHERE api_key_id = %s", key.id)
    return [row[0] for row in rows]


def recorded(postgres: Postgres, key: Key, count: int, timeout: float = 30) -> list[str]:
    """The key's usage records' request ids once there are `count` of them."""
    wait_for(lambda: len(request_ids(postgres, key)) >= count, timeout=timeout)
    return request_ids(postgres, key)
