"""Rotating a key: a new secret under the same record, the old one honoured for
a grace period, and every gateway cache told about both lookups."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from gateway import auth
from gateway.errors import InvalidApiKey
from keys.models import ApiKey
from keys.services import key_revoke_previous, key_rotate, key_set_active


def authenticate(secret: str) -> auth.KeyInfo:
    return asyncio.run(auth.authenticate(f"Bearer {secret}", "127.0.0.1"))


def refused(secret: str) -> bool:
    try:
        authenticate(secret)
    except InvalidApiKey:
        return True
    return False


def test_rotation_keeps_the_record_and_its_settings(make_key):
    key, old = make_key(name="ci", rpm_limit=60, allowed_models=["m"])

    rotated, new = key_rotate(api_key=key)

    assert rotated.pk == key.pk
    assert (rotated.name, rotated.rpm_limit, rotated.allowed_models) == ("ci", 60, ["m"])
    assert new != old
    assert rotated.display_prefix == new[:12]
    stored = [str(getattr(rotated, f.attname)) for f in ApiKey._meta.fields]
    assert not any(new in value for value in stored)


def test_without_a_grace_period_the_old_secret_is_refused_at_once(make_key):
    key, old = make_key()
    authenticate(old)  # warm the cache

    _, new = key_rotate(api_key=key)

    assert refused(old)
    assert authenticate(new).id == key.pk


def test_both_secrets_work_during_the_grace_period_and_then_only_the_new_one(make_key):
    key, old = make_key()
    authenticate(old)

    rotated, new = key_rotate(api_key=key, grace=timedelta(hours=1))

    assert authenticate(old).id == authenticate(new).id == key.pk
    rotated.previous_valid_until = timezone.now() - timedelta(seconds=1)
    rotated.save()
    assert refused(old)
    assert authenticate(new).id == key.pk


def test_the_grace_period_ends_on_time_even_for_a_cached_key(make_key):
    key, old = make_key()
    _, new = key_rotate(api_key=key, grace=timedelta(seconds=1))
    authenticate(old)
    authenticate(new)

    time.sleep(1.1)

    assert refused(old)
    assert authenticate(new).id == key.pk


def test_a_warm_request_with_either_secret_touches_no_database(make_key, monkeypatch):
    key, old = make_key()
    _, new = key_rotate(api_key=key, grace=timedelta(hours=1))
    authenticate(new)  # one load caches the entry under both lookups

    def no_database(lookup):
        raise AssertionError("warm request read the database")

    monkeypatch.setattr(auth, "_load", no_database)
    assert authenticate(old).id == authenticate(new).id == key.pk


def test_a_second_rotation_ends_the_first_secret_everywhere(make_key):
    key, first = make_key()
    rotated, second = key_rotate(api_key=key, grace=timedelta(hours=1))
    authenticate(first)
    authenticate(second)

    _, third = key_rotate(api_key=rotated, grace=timedelta(hours=1))

    assert refused(first)
    assert authenticate(second).id == authenticate(third).id == key.pk


def test_revoking_the_previous_secret_ends_the_grace_period_now(make_key):
    key, old = make_key()
    rotated, new = key_rotate(api_key=key, grace=timedelta(days=1))
    authenticate(old)

    key_revoke_previous(api_key=rotated)

    assert refused(old)
    assert authenticate(new).id == key.pk


def test_disabling_a_rotated_key_refuses_both_secrets_at_once(make_key):
    key, old = make_key()
    rotated, new = key_rotate(api_key=key, grace=timedelta(hours=1))
    authenticate(old)
    authenticate(new)

    key_set_active(api_key=rotated, active=False)

    with pytest.raises(InvalidApiKey, match="disabled"):
        authenticate(old)
    with pytest.raises(InvalidApiKey, match="disabled"):
        authenticate(new)


def test_deleting_a_rotated_key_refuses_both_secrets_at_once(make_key):
    key, old = make_key()
    rotated, new = key_rotate(api_key=key, grace=timedelta(hours=1))
    authenticate(old)
    authenticate(new)

    rotated.delete()

    assert refused(old)
    assert refused(new)


def test_rotation_is_published_to_other_workers_for_every_lookup(make_key, settings):
    from gateway.invalidation import CHANNEL
    from purebridge.redis import sync_client

    key, _ = make_key()
    old_lookup = key.lookup
    pubsub = sync_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        pubsub.get_message(timeout=1.0)
        rotated, _ = key_rotate(api_key=key, grace=timedelta(hours=1))
        messages = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(messages) < 2:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                data = message["data"]
                messages.add(data.decode() if isinstance(data, bytes) else data)
    finally:
        pubsub.close()

    assert {f"key:{old_lookup}", f"key:{rotated.lookup}"} <= messages


def test_the_gateway_serves_both_secrets_during_the_grace_period(live, make_key, make_model, v1):
    make_model("m")
    key, old = make_key()
    _, new = key_rotate(api_key=key, grace=timedelta(hours=1))

    assert v1(live.url, old, "m") == 200
    assert v1(live.url, new, "m") == 200
