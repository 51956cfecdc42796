from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(ignore_result=True)
def reclaim_leases() -> int:
    """Return the admission leases of web workers that were killed before
    they could (gateway/leases.py); idempotent, so overlapping runs
    are harmless."""
    if not settings.REDIS_URL:
        return 0  # the embedded default admits in-process: no leases
    from gateway.leases import reclaim_leases as reclaim

    return reclaim()


@shared_task(ignore_result=True)
def recover_journals() -> int:
    """Record the requests of web workers that died mid-request
    (gateway/journal.py); safe to run twice at once."""
    if not settings.REDIS_URL:
        return 0  # the embedded default: one process, no journal
    from gateway.journal import recover

    return recover()
