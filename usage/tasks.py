"""The usage app's Celery tasks. Each is acknowledged only once it has run and
is given back to the queue if its worker dies under it (settings: acks late,
reject on worker lost, the broker's visibility timeout), so each is safe to run
twice: the rollup recomputes, an alert is claimed by a unique row."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from usage.anomalies import spend_anomalies_check
from usage.retention import usage_purge
from usage.services import budget_alerts_send, budget_alerts_sweep, usage_rollup


@shared_task(ignore_result=True)
def purge_usage() -> int:
    """Delete raw usage records past retention (usage/retention.py): a run
    that dies leaves what it deleted deleted, and the next goes on."""
    return usage_purge()


@shared_task(ignore_result=True)
def rollup_usage() -> int:
    # A run that dies rolls back with its watermark: this task delivered
    # again, or beat's next run, does the same work.
    return usage_rollup()


@shared_task(
    ignore_result=True,
    # The email server or the database unreachable (SMTP errors are OSErrors).
    autoretry_for=(OSError, OperationalError, InterfaceError),
    retry_backoff=True,
    # Below the broker's visibility timeout: a retry waiting longer than that
    # for its countdown would be handed to a second worker meanwhile.
    retry_backoff_max=300,
    max_retries=10,
)
def check_budget_alerts(key_id: int) -> int:
    """Mail the thresholds a key's budgets have crossed; returns how many emails."""
    return budget_alerts_send(key_id=key_id)


@shared_task(ignore_result=True)
def sweep_budget_alerts() -> int:
    """Queue a check of every key charged since the last sweep: crossings whose
    check the usage writer never queued (the broker was down, the web worker
    stopped) are mailed too. Returns how many checks were queued."""
    return budget_alerts_sweep(check=lambda key_id: check_budget_alerts.delay(key_id))


@shared_task(
    ignore_result=True,
    # As check_budget_alerts: an email that failed rolled its episode back.
    autoretry_for=(OSError, OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
)
def check_spend_anomalies() -> int:
    """Judge every key's last whole hour against its baseline (hourly, from
    beat); mail each new episode of unusual spend. Returns how many emails."""
    return spend_anomalies_check()
