"""Shared fixtures: a real PureBridge server and a fake upstream on loopback.

`make test` runs the suite against throwaway PostgreSQL and Redis
(scripts/with-services.sh sets DATABASE_URL and REDIS_URL).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx2
import openai
import pytest
import uvicorn
from django.test import override_settings

from tests.fake_upstream import FakeUpstream

# Accounts the tests make are never credited: served unmetered, as a
# self-hosted gateway's are, unless a test turns prepaid billing on. (Servers
# the tests start in their own processes read it from here.)
os.environ.setdefault("PUREBRIDGE_BILLING_MODE", "unmetered")


@pytest.fixture(scope="session", autouse=True)
def _quick_usage_writer() -> Iterator[None]:
    """Batch usage records for 20 ms instead of 200 (each test waits for the writer),
    and hash test passwords cheaply."""
    with override_settings(
        PUREBRIDGE_BILLING_MODE=os.environ["PUREBRIDGE_BILLING_MODE"],
        PUREBRIDGE_USAGE_FLUSH_SECONDS=0.02,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    ):
        yield


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start_in_thread()
    yield upstream
    upstream.stop()


@pytest.fixture(autouse=True)
def _fresh_state(request) -> Iterator[None]:
    """Each test starts with empty in-process caches, no route cooling down, no
    refusal of a made-up key counted and a fresh fake upstream."""
    _forget_state()
    if "fake_upstream" in request.fixturenames:
        request.getfixturevalue("fake_upstream").reset_state()
    yield
    _forget_state()


def _forget_state() -> None:
    from django.conf import settings

    from gateway.auth import invalidate_all_keys
    from gateway.catalogue import invalidate_catalogue
    from gateway.cooldown import cooldowns
    from gateway.refusals import refusals

    invalidate_all_keys()
    invalidate_catalogue()
    cooldowns.clear()
    refusals.forget()
    if settings.REDIS_URL:
        from gateway.limiter_redis import limiter
        from purebridge.redis import sync_client

        limiter.leases.forget()

        client = sync_client()
        for key in client.scan_iter(match="pb:*", count=1000):
            client.delete(key)


class ServerThread:
    """uvicorn serving purebridge.asgi:application in a thread of this process."""

    def __init__(self, host: str = "127.0.0.1", lifespan: str = "on") -> None:
        from purebridge.asgi import application

        self.host = host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        # No proxy headers, as gunicorn.conf.py and `make run`: the client
        # address is PureBridge's to find (gateway/http.py client_address).
        config = uvicorn.Config(
            application,
            lifespan=lifespan,
            log_level="warning",
            access_log=False,
            loop="asyncio",
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        from gateway.upstream import close_session

        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            await close_session()  # the lifespan's, when it is off

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            threading.Event().wait(0.05)
        raise RuntimeError("PureBridge test server did not start")

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no request is being handled: a client may see its whole answer
        a moment before the server has finished the request (and settled its usage)."""
        deadline = time.monotonic() + timeout
        while self.server.server_state.tasks:
            if time.monotonic() > deadline:
                raise AssertionError("PureBridge test server still has requests in flight")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker) -> Iterator[ServerThread]:
    running = ServerThread().start()
    yield running
    running.stop()
    # The server's threads drew connections from psycopg's pool; close it so
    # the test database can be dropped.
    from django.db import connections

    with django_db_blocker.unblock():
        for conn in connections.all():
            if hasattr(conn, "close_pool"):
                conn.close_pool()


@pytest.fixture
def live(server, transactional_db) -> Iterator[ServerThread]:
    """The server, with a database that the server's threads can see."""
    from usage.recorder import get_recorder

    yield server
    # Usage of this test's requests is written before its tables are emptied,
    # never into the next test's.
    server.wait_idle()
    get_recorder().flush(10)


@pytest.fixture
def http(live) -> Iterator[httpx2.Client]:
    """A plain HTTP client for the live server (no retries, no SDK behaviour)."""
    with httpx2.Client(base_url=live.url, timeout=20) as client:
        yield client


@pytest.fixture
def client(live, api_key) -> Iterator[openai.OpenAI]:
    """The real OpenAI SDK pointed at the live server with a valid key."""
    with openai.OpenAI(
        base_url=f"{live.url}/v1", api_key=api_key, max_retries=0, timeout=20
    ) as sdk:
        yield sdk


@pytest.fixture
def account(transactional_db):
    from accounts.models import User

    return User.objects.create_user("owner@example.com", "pw-owner-1234").account


@pytest.fixture
def owner(account):
    """The account's one user."""
    return account.users.get()


@pytest.fixture
def owner_client(owner):
    """A console client signed in as the owner, sending CSRF tokens as a browser does."""
    from tests.web import browser_like_client

    return browser_like_client(owner)


@pytest.fixture
def make_key(account):
    from keys.services import key_create

    def make(**fields) -> tuple[object, str]:
        fields.setdefault("name", "test")
        return key_create(account=fields.pop("account", account), **fields)

    return make


@pytest.fixture
def api_key(make_key) -> str:
    return make_key()[1]


@pytest.fixture
def make_provider(transactional_db, fake_upstream):
    """A provider (default: the fake upstream) with any field set, e.g. short timeouts."""
    from gateway.models import Provider

    def make(name: str = "fake", api_key: str = "", **fields):
        fields.setdefault("base_url", fake_upstream.base_url)
        provider = Provider(name=name, **fields)
        provider.api_key = api_key
        provider.save()
        return provider

    return make


@pytest.fixture
def dead_base_url() -> str:
    """The base URL of a port on loopback where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def make_model(transactional_db, fake_upstream):
    """A public model (of `kind`, chat or embedding) whose routes go to the
    fake upstream (or another provider)."""
    from gateway.models import CatalogModel, Provider, Route

    def make(
        public_id: str = "test-model",
        *upstream_models: str,
        provider=None,
        kind: str = "chat",
        **prices,
    ):
        provider = (
            provider
            or Provider.objects.get_or_create(
                name="fake", defaults={"kind": "openai", "base_url": fake_upstream.base_url}
            )[0]
        )
        model = CatalogModel.objects.create(
            public_id=public_id,
            kind=kind,
            input_per_mtok=Decimal(prices.get("input", "1.25")),
            cached_input_per_mtok=Decimal(prices.get("cached", "0.125")),
            output_per_mtok=Decimal(prices.get("output", "10")),
        )
        for priority, upstream_model in enumerate(upstream_models or ("fake",)):
            Route.objects.create(
                model=model, provider=provider, upstream_model=upstream_model, priority=priority
            )
        return model

    return make


@pytest.fixture
def usage_records(request):
    """Wait for the server's requests to finish and the usage writer to drain,
    then return every record, oldest first."""
    from usage.models import UsageRecord
    from usage.recorder import get_recorder

    def read() -> list:
        if "live" in request.fixturenames:
            request.getfixturevalue("live").wait_idle()
        assert get_recorder().flush(10), "usage writer did not drain"
        return list(UsageRecord.objects.order_by("created_at", "id"))

    return read


@pytest.fixture(scope="module")
def broker_redis(tmp_path_factory):
    """A redis-server of the test module's own, as the Celery broker of the
    workers a test starts: a test may kill it (the broker goes down), and a
    task left by a worker the test killed is never run by a later test's."""
    from tests.limits.support import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("broker")).start()
    yield server
    server.stop()


@pytest.fixture
def broker(broker_redis):
    """The module's own broker, running and empty."""
    if not broker_redis.ping():
        broker_redis.start()
    broker_redis.client().flushall()
    return broker_redis
