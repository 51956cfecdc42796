from __future__ import annotations

from celery import shared_task

from usage.services import budget_alerts_send, usage_rollup


@shared_task(ignore_result=True)
def rollup_usage() -> int:
    # Recomputing is idempotent, so two overlapping runs only repeat work.
    return usage_rollup()


@shared_task(
    ignore_result=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5
)
def check_budget_alerts(key_id: int) -> int:
    """Mail the thresholds a key's budgets have crossed; returns how many emails."""
    return budget_alerts_send(key_id=key_id)
