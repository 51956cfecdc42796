"""Keeping every web worker's in-process caches in step with the database.

A change to a key, provider, model or route clears the local cache at once and,
when Redis is configured, publishes a message that every worker's listener
applies. Without Redis (embedded mode) other processes fall back to the TTL.
A key's message also tells each worker's filter of existing lookups
(gateway/lookups.py) that the key may answer to them, and is announced in
Redis before it is published: a new key works on its first request everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

log = logging.getLogger(__name__)
CHANNEL = "purebridge:invalidate"
CATALOGUE = "catalogue"


def _apply(message: str) -> None:
    from gateway.auth import invalidate_account, invalidate_all_keys, invalidate_key
    from gateway.catalogue import invalidate_catalogue

    if message == CATALOGUE:
        invalidate_catalogue()
    elif message == "keys":
        invalidate_all_keys()
    elif message.startswith("key:"):
        invalidate_key(message[4:])
    elif message.startswith("account:"):
        invalidate_account(int(message[8:]))
    elif message.startswith("cool:"):
        from gateway.cooldown import cooldowns

        _, route_id, seconds = message.split(":")
        cooldowns.apply(int(route_id), float(seconds))


def _publish(message: str) -> None:
    _apply(message)
    if not settings.REDIS_URL:
        return
    from gateway.lookups import announced_key, announced_seconds
    from purebridge.redis import sync_client

    try:
        with sync_client().pipeline(transaction=False) as redis:
            if message.startswith("key:"):
                # Before the message, and before the key's maker gets its
                # secret: a worker that sees the key's first request before
                # the message asks for this (gateway/lookups.py).
                redis.set(announced_key(message[4:]), 1, ex=announced_seconds())
            redis.publish(CHANNEL, message)
            redis.execute()
    except Exception:  # the TTL still bounds how stale other workers get
        log.warning("could not publish cache invalidation %r", message, exc_info=True)


def publish(message: str) -> None:
    """Invalidate after the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _publish(message))


def _key_changed(sender, instance, **kwargs) -> None:
    # A rotated key is cached under its new and its previous lookup, and a
    # rotation or revocation may drop a lookup that a worker still holds.
    for lookup in sorted(instance.lookups_changed()):
        publish(f"key:{lookup}")


def _catalogue_changed(sender, instance, **kwargs) -> None:
    publish(CATALOGUE)


def _account_changed(sender, instance, created=False, **kwargs) -> None:
    # Keys carry their account's time zone (budget windows): refresh them all.
    # A new account has no keys yet.
    if not created:
        publish("keys")


# A Balance saved with only these columns leaves its keys as they were read: a
# usage debit (billing/services.py ledger_post) moves no limit.
_BALANCE_UNREAD = frozenset({"amount_usd", "used_usd", "updated_at"})


def _balance_changed(sender, instance, update_fields=None, **kwargs) -> None:
    # Keys carry their account's credit (the limit admission holds it to) and
    # hold: a top-up or a dispute reaches every worker within the second.
    if update_fields is None or not set(update_fields) <= _BALANCE_UNREAD:
        publish(f"account:{instance.account_id}")


def connect_signals() -> None:
    from accounts.models import Account
    from billing.models import Balance
    from gateway.models import CatalogModel, Provider, Route
    from keys.models import ApiKey

    post_save.connect(_account_changed, sender=Account, dispatch_uid="inv-account")
    post_save.connect(_balance_changed, sender=Balance, dispatch_uid="inv-balance")
    for signal in (post_save, post_delete):
        signal.connect(_key_changed, sender=ApiKey, dispatch_uid=f"inv-key-{signal}")
        for model in (Provider, CatalogModel, Route):
            signal.connect(
                _catalogue_changed, sender=model, dispatch_uid=f"inv-{model.__name__}-{signal}"
            )


async def listen(stop: asyncio.Event) -> None:
    """Apply invalidations published by other processes until `stop` is set."""
    from purebridge.redis import async_client

    while not stop.is_set():
        try:
            pubsub = async_client().pubsub()
            await pubsub.subscribe(CHANNEL)
            # Anything may have changed while this worker was not listening.
            _apply(CATALOGUE)
            _apply("keys")
            from gateway.lookups import known_lookups

            # Keys made before now are in the build; later ones in messages.
            known_lookups.rebuild()
            from gateway.cooldown import cooldowns

            await cooldowns.load_shared()
            try:
                while not stop.is_set():
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None:
                        data = msg["data"]
                        _apply(data.decode() if isinstance(data, bytes) else data)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("cache invalidation listener lost Redis; retrying", exc_info=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)
