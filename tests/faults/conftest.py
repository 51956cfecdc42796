"""Fixtures for the fault tests: a PostgreSQL and a Redis of the module's own,
and PureBridge (one gunicorn worker) on them."""

from __future__ import annotations

import pytest

from tests.faults.support import Postgres
from tests.limits.support import RedisServer


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres(own_redis):
    server = Postgres().create()
    try:
        server.manage(own_redis.url, "migrate", "--no-input", "-v", "0")
        yield server
    finally:
        server.remove()
