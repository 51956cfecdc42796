"""Made-up keys are cheap: refused without a database query by each worker's
filter of the lookups that exist (gateway/lookups.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db.backends.signals import connection_created

from gateway import lookups
from gateway.lookups import BloomFilter, KnownLookups, known_lookups
from keys.models import ApiKey
from keys.services import key_delete, key_parse, key_rotate
from tests.helpers import chat_body, made_up_key, post_chat, wait_for


@pytest.fixture
def queries():
    """The SQL every thread of this process runs during the test (the server's
    database reads run in executor threads, each on a connection of its own)."""
    statements: list[str] = []
    wrapped: list = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    def on_connect(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)
            wrapped.append(connection)

    connection_created.connect(on_connect, weak=False, dispatch_uid="test-queries")
    yield statements
    connection_created.disconnect(dispatch_uid="test-queries")
    for connection in wrapped:
        with contextlib.suppress(ValueError):
            connection.execute_wrappers.remove(count)


def key_reads(statements: list[str]) -> list[str]:
    """The reads of one key by its lookup (gateway.auth._load)."""
    return [s for s in statements if '"keys_apikey"."lookup" = ' in s or 'previous_lookup" = ' in s]


def filter_in_use(http) -> None:
    """Until the server's filter is loaded and trusted: it is refreshed when
    used (after a failed read, RETRY_SECONDS later), and the server may have
    been idle for longer than the TTL."""

    def loaded() -> bool:
        post_chat(http, made_up_key(), chat_body())
        return wait_for(lambda: known_lookups.trusted, timeout=0.5)

    assert wait_for(loaded, timeout=20), "the filter was never loaded"


def test_a_flood_of_made_up_keys_costs_no_database_query_per_key(
    http, api_key, make_model, queries, settings
):
    settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS = 0  # not the point here (test_refusals)
    make_model()
    assert post_chat(http, api_key, chat_body()).status_code == 200
    filter_in_use(http)
    queries.clear()

    statuses = {post_chat(http, made_up_key(), chat_body()).status_code for _ in range(300)}

    assert statuses == {401}
    assert key_reads(queries) == []
    # At most the filter's own refresh (the keys changed lately), never one per key.
    assert len([s for s in queries if "keys_apikey" in s]) <= 1


def test_a_made_up_key_is_still_refused_like_an_unknown_one(http, make_model):
    make_model()
    filter_in_use(http)

    response = post_chat(http, made_up_key(), chat_body())

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.json()["error"]["message"] == "Incorrect API key provided."


def test_a_new_key_works_on_its_first_request_while_the_filter_is_in_use(
    http, make_key, make_model
):
    make_model()
    filter_in_use(http)

    _, secret = make_key()

    assert post_chat(http, secret, chat_body()).status_code == 200


def test_a_rotated_keys_previous_secret_works_in_its_grace_period(http, make_key, make_model):
    make_model()
    key, old = make_key()
    assert post_chat(http, old, chat_body()).status_code == 200
    filter_in_use(http)

    _, new = key_rotate(api_key=key, grace=timedelta(hours=1))

    assert post_chat(http, old, chat_body()).status_code == 200
    assert post_chat(http, new, chat_body()).status_code == 200


def test_a_deleted_key_is_refused_though_its_lookup_is_still_in_the_filter(
    http, make_key, make_model
):
    make_model()
    key, secret = make_key()
    assert post_chat(http, secret, chat_body()).status_code == 200

    key_delete(api_key=key)

    assert post_chat(http, secret, chat_body()).status_code == 401


def build() -> BloomFilter:
    built, _ = lookups._build()
    return built


def test_a_build_holds_every_keys_lookup_and_previous_ones_only_in_their_grace(
    make_key,
):
    kept, kept_old = make_key()
    ended, ended_old = make_key()
    kept, kept_new = key_rotate(api_key=kept, grace=timedelta(hours=1))
    ended, ended_new = key_rotate(api_key=ended, grace=timedelta(hours=1))
    ApiKey.objects.filter(pk=ended.pk).update(
        previous_valid_until=datetime.now(UTC) - timedelta(seconds=1)
    )

    built = build()

    for secret in (kept_old, kept_new, ended_new):
        assert key_parse(secret).lookup in built
    assert key_parse(ended_old).lookup not in built


def test_a_filter_has_no_false_negatives_and_few_false_positives():
    members = [made_up_key()[6:18] for _ in range(20_000)]
    known = BloomFilter.sized_for(len(members))
    for member in members:
        known.add(member)

    assert all(member in known for member in members)
    strangers = [made_up_key()[6:18] for _ in range(20_000)]
    assert sum(stranger in known for stranger in strangers) < 20  # 0.1%


@pytest.mark.parametrize(
    ("keys", "kib"), [(0, 128), (50_000, 128), (100_000, 256), (1_000_000, 4096)]
)
def test_a_filter_takes_the_memory_the_readme_says(keys, kib):
    assert len(BloomFilter.sized_for(keys).bits) == kib * 1024


def test_a_filter_never_takes_more_than_16_mib():
    assert len(BloomFilter.sized_for(100_000_000).bits) == 16 * 1024 * 1024


def test_a_filter_past_its_room_asks_for_a_rebuild():
    known = BloomFilter(capacity=10)
    for n in range(10):
        known.add(str(n))
    assert not known.full

    known.add("eleven")

    assert known.full


def may_exist(filter_: KnownLookups, lookup: str) -> bool:
    async def ask() -> bool:
        return filter_.may_exist(lookup)

    return asyncio.run(ask())


def test_a_lookup_is_refused_only_once_the_filter_is_loaded(make_key):
    fresh = KnownLookups()
    _, secret = make_key()
    stranger = key_parse(made_up_key()).lookup

    assert may_exist(fresh, stranger)  # nothing loaded yet: may exist
    asyncio.run(fresh.refresh())

    assert not may_exist(fresh, stranger)
    assert may_exist(fresh, key_parse(secret).lookup)


def test_a_filter_not_refreshed_within_the_ttl_refuses_nothing(make_key, settings):
    settings.PUREBRIDGE_CACHE_TTL = 0.5
    fresh = KnownLookups()
    asyncio.run(fresh.refresh())
    stranger = key_parse(made_up_key()).lookup
    assert not may_exist(fresh, stranger)

    time.sleep(0.6)

    # Without Redis a key made elsewhere reaches it only through a refresh:
    # a filter that missed its refresh may be missing new keys.
    assert may_exist(fresh, stranger)


def test_a_key_made_without_a_message_is_found_by_the_next_refresh(make_key):
    fresh = KnownLookups()
    asyncio.run(fresh.refresh())
    _, secret = make_key()  # this process's messages reach only known_lookups
    lookup = key_parse(secret).lookup
    assert not may_exist(fresh, lookup)

    asyncio.run(fresh.refresh())  # what using it does every half TTL

    assert may_exist(fresh, lookup)


def refuses(filter_: KnownLookups, lookup: str) -> bool:
    return asyncio.run(filter_.refuses(lookup))


def test_a_key_announced_in_redis_works_before_its_message_is_read(make_key):
    fresh = KnownLookups()
    asyncio.run(fresh.refresh())

    _, secret = make_key()  # announced in Redis; its message reaches only known_lookups

    assert not refuses(fresh, key_parse(secret).lookup)
    assert refuses(fresh, key_parse(made_up_key()).lookup)


def test_while_redis_cannot_answer_a_lookup_the_filter_lacks_goes_to_the_database(
    transactional_db, settings
):
    fresh = KnownLookups()
    asyncio.run(fresh.refresh())
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{unused.getsockname()[1]}/0"
    assert fresh.trusted

    # A key made while Redis was down was announced to no one.
    assert not refuses(fresh, key_parse(made_up_key()).lookup)


def test_without_redis_the_filter_alone_refuses(transactional_db, settings):
    fresh = KnownLookups()
    asyncio.run(fresh.refresh())
    settings.REDIS_URL = ""
    assert fresh.trusted

    assert refuses(fresh, key_parse(made_up_key()).lookup)


def test_lookups_added_while_a_build_reads_are_kept(make_key, monkeypatch):
    fresh = KnownLookups()
    late = key_parse(made_up_key()).lookup

    def build_and_meanwhile_add():
        fresh.add(late)  # a message while the database is read
        return lookups._build()

    monkeypatch.setattr(lookups, "_build", build_and_meanwhile_add)
    asyncio.run(fresh.refresh())

    assert may_exist(fresh, late)


def test_with_ttl_zero_there_is_no_filter(settings):
    settings.PUREBRIDGE_CACHE_TTL = 0
    fresh = KnownLookups()

    assert may_exist(fresh, key_parse(made_up_key()).lookup)


def test_a_key_whose_announcement_redis_lost_is_not_refused(http, make_model, make_key):
    """Redis restarted empty after a key was made and before this worker's
    filter had it: its announcement is gone with everything else, so the
    worker finds its own mark gone too and lets the database decide until its
    filter is built anew."""
    from purebridge.redis import sync_client

    make_model("test-model")
    filter_in_use(http)
    key, secret = make_key()
    lookup = key_parse(secret).lookup
    with known_lookups._lock:  # this worker never got the key's message
        known_lookups._filter = BloomFilter.sized_for(1)
    sync_client().flushall()  # and Redis lost its data

    response = post_chat(http, secret, chat_body())

    assert response.status_code == 200, response.text
    assert wait_for(lambda: known_lookups.trusted and lookup in known_lookups._filter, timeout=10)
