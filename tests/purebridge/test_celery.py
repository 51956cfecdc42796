"""The Celery app's settings that decide whether a task survives its worker."""

from __future__ import annotations

from django.conf import settings

from purebridge.celery import app
from usage import alerts
from usage.tasks import check_budget_alerts


def project_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_is_acknowledged_after_it_ran_and_given_back_if_its_worker_dies():
    tasks = project_tasks()

    assert set(tasks) >= {
        "usage.tasks.rollup_usage",
        "usage.tasks.check_budget_alerts",
        "usage.tasks.sweep_budget_alerts",
        "gateway.tasks.reclaim_leases",
        "gateway.tasks.recover_journals",
        "billing.tasks.reconcile_books",
        "billing.tasks.fulfil_lost_checkouts",
        "billing.tasks.sweep_low_balance_alerts",
        "usage.tasks.check_spend_anomalies",
        "usage.tasks.purge_usage",
        "billing.tasks.expire_credits",
    }
    for task in tasks.values():
        assert (task.name, task.acks_late, task.reject_on_worker_lost) == (task.name, True, True)


def test_the_visibility_timeout_outlasts_every_wait_before_a_task_runs():
    """A task still waiting for its countdown after the visibility timeout is
    handed to a second worker as well."""
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]

    assert timeout >= 600
    assert check_budget_alerts.retry_backoff_max < timeout
    assert timeout > alerts.CHECK_EVERY


def test_every_periodic_task_is_scheduled_in_the_one_beat_schedule():
    tasks = project_tasks()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled == {
        "usage.tasks.rollup_usage",
        "usage.tasks.sweep_budget_alerts",
        "gateway.tasks.reclaim_leases",
        "gateway.tasks.recover_journals",
        "billing.tasks.reconcile_books",
        "billing.tasks.fulfil_lost_checkouts",
        "billing.tasks.sweep_low_balance_alerts",
        "usage.tasks.check_spend_anomalies",
        "usage.tasks.purge_usage",
        "billing.tasks.expire_credits",
    }
    assert scheduled <= set(tasks)
