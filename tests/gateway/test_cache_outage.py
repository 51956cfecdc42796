"""Keys and the model catalogue while the database cannot be read: what a
worker has read is served as it was last read, past its TTL and after a bulk
invalidation; what it has not read, or what changed since, is a 503."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from gateway.auth import authenticate, invalidate_all_keys, invalidate_key
from gateway.catalogue import get_catalogue, invalidate_catalogue
from gateway.errors import DatabaseUnavailable
from purebridge import db


async def made(make, *args):
    """make(*args) in a thread, its connection given back (else the test
    database could not be dropped at the end)."""

    def run():
        try:
            return make(*args)
        finally:
            connection.close()

    return await sync_to_async(run)()


@pytest.fixture(autouse=True)
def _database_up():
    db.mark_up()
    yield
    db.mark_up()


@pytest.fixture
def unreadable(monkeypatch):
    """Make every read of the database fail from now on."""

    async def unreachable(*args, **kwargs):
        raise DatabaseUnavailable()

    def cut() -> None:
        monkeypatch.setattr("gateway.auth.run_db", unreachable)
        monkeypatch.setattr("gateway.catalogue.run_db", unreachable)

    return cut


async def test_a_key_read_before_is_served_as_last_read(make_key, unreadable):
    key, secret = await made(make_key)
    await authenticate(f"Bearer {secret}", "127.0.0.1")
    invalidate_all_keys()  # expired, as after its TTL or Redis's listener reconnecting
    unreadable()

    assert (await authenticate(f"Bearer {secret}", "127.0.0.1")).id == key.id  # tried, failed
    db.mark_down()
    assert (await authenticate(f"Bearer {secret}", "127.0.0.1")).id == key.id  # not tried


async def test_a_key_not_read_before_is_a_503(make_key, unreadable):
    _, secret = await made(make_key)
    unreadable()

    with pytest.raises(DatabaseUnavailable):
        await authenticate(f"Bearer {secret}", "127.0.0.1")


async def test_a_key_that_changed_is_not_served_from_before_the_change(make_key, unreadable):
    key, secret = await made(make_key)
    await authenticate(f"Bearer {secret}", "127.0.0.1")
    invalidate_key(key.lookup)  # a change published through Redis
    unreadable()
    db.mark_down()

    with pytest.raises(DatabaseUnavailable):
        await authenticate(f"Bearer {secret}", "127.0.0.1")


async def test_the_catalogue_read_before_is_served_as_last_read(make_model, unreadable):
    await made(make_model, "gpt-cached")
    assert "gpt-cached" in (await get_catalogue()).models
    invalidate_catalogue()
    unreadable()

    assert "gpt-cached" in (await get_catalogue()).models  # tried, failed
    db.mark_down()
    assert "gpt-cached" in (await get_catalogue()).models  # not tried
