from __future__ import annotations

from celery import shared_task

from usage.services import usage_rollup


@shared_task(ignore_result=True)
def rollup_usage() -> int:
    # Recomputing is idempotent, so two overlapping runs only repeat work.
    return usage_rollup()
