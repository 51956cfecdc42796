"""Failed-login throttle, per email address and client IP, in Django's cache.

Keyed on both so that someone guessing at one address from one place is
stopped, while the owner of that address can still log in from elsewhere (a
throttle on the email alone would let anyone lock a user out). The window is
fixed from the first failure: counters in Redis (production) or in memory
(embedded default, one process) expire on their own.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.http import HttpRequest

LIMIT = 5
WINDOW_SECONDS = 15 * 60


def client_ip(request: HttpRequest) -> str:
    # uvicorn and gunicorn's uvicorn worker already put the proxy's
    # X-Forwarded-For client here for trusted proxies (FORWARDED_ALLOW_IPS).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _cache_key(email: str, ip: str) -> str:
    digest = hashlib.sha256(f"{email.strip().lower()}|{ip}".encode()).hexdigest()
    return f"login-failures:{digest}"


def login_is_throttled(*, email: str, ip: str) -> bool:
    return int(cache.get(_cache_key(email, ip), 0)) >= LIMIT


def login_failure_record(*, email: str, ip: str) -> int:
    """Count one failed attempt; returns the failures in the current window."""
    key = _cache_key(email, ip)
    cache.add(key, 0, WINDOW_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, WINDOW_SECONDS)
        return 1


def login_failures_clear(*, email: str, ip: str) -> None:
    cache.delete(_cache_key(email, ip))
