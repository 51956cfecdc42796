"""Failed redemption attempts, throttled per account and per client IP, in
Django's cache (Redis when REDIS_URL is set, shared by every web process;
memory in the embedded default, which has one).

An attempt is counted before its code is looked at and handed back when it
succeeds: counting only after a failure would let a burst of concurrent
guesses all pass the check before any of them was counted. The window is
fixed from the first counted attempt; counters expire on their own.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

LIMIT = 10
WINDOW_SECONDS = 60
NAMESPACE = "redeem-failures"


def _keys(account_id: int, ip: str) -> tuple[str, str]:
    address = hashlib.sha256(ip.encode()).hexdigest()
    return f"{NAMESPACE}:account:{account_id}", f"{NAMESPACE}:ip:{address}"


def _count(key: str) -> int:
    cache.add(key, 0, WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, WINDOW_SECONDS)
        return 1
    if count == 1:
        # Normally a no-op; but a counter that expired inside the cache's own
        # incr (exists, then INCR) was made again without an expiry.
        cache.touch(key, WINDOW_SECONDS)
    return count


def redeem_attempt_allowed(*, account_id: int, ip: str) -> bool:
    """Count one attempt against the account and the address; False when
    either is past LIMIT in its window (the attempt must then stop here)."""
    counts = [_count(key) for key in _keys(account_id, ip)]
    return all(count <= LIMIT for count in counts)


def redeem_attempt_succeeded(*, account_id: int, ip: str) -> None:
    """Hand back the attempt counted for a redemption that succeeded: only
    failures are throttled."""
    for key in _keys(account_id, ip):
        try:
            left = cache.decr(key)
        except ValueError:  # the window ended meanwhile
            continue
        if left < 0:  # expired inside decr and made again, without an expiry
            cache.delete(key)
